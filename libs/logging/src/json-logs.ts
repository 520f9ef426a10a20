import type { LoggerService } from '@nestjs/common';
import { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { pino, type DestinationStream, type Level, type Logger } from 'pino';

declare module 'fastify' {
  interface FastifyRequest {
    /** The processing serial a command's answer named, for its log line (see captureSerials). */
    loggedSerial?: string;
  }
}

/** The log levels the apps' *_LOG_LEVEL variables take: Nest's names, most severe first. */
export const LOG_LEVEL_NAMES = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'] as const;
export type LogLevelName = (typeof LOG_LEVEL_NAMES)[number];

/** Nest's level names to pino's. */
const PINO_LEVELS: Readonly<Record<LogLevelName, Level>> = { fatal: 'fatal', error: 'error', warn: 'warn', log: 'info', debug: 'debug', verbose: 'trace' };

/** The label of a request no route matched: never its URL. */
const UNMATCHED = '(unmatched)';

/**
 * What is never written even if some code hands it to the logger: credentials and cookies in headers,
 * and request or answer bodies (they hold codes, numbers, secrets, answers, notice text).
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-csrf-token"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'req.body',
  'res.body',
  'body',
  'payload',
];

export interface LogSink {
  readonly logger: Logger;
  /** Writes out what is buffered, synchronously (before the process ends by a signal). */
  flush(): void;
}

/**
 * An application's pino logger: one JSON object per line on stdout (or `stream`), at its *_LOG_LEVEL, with
 * `app` on every line, the time as ISO-8601, the level by name, and the redaction above. Requests are
 * described by their method and route template only (never the URL, headers or body).
 */
export function createLogSink(app: string, level: LogLevelName, stream?: DestinationStream): LogSink {
  const destination = stream ?? pino.destination({ dest: 1, sync: false });
  const logger = pino(
    {
      level: PINO_LEVELS[level],
      base: { app },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      serializers: {
        req: (request: FastifyRequest) => ({ method: request.method, route: request.routeOptions?.url ?? UNMATCHED }),
        res: (reply: FastifyReply) => ({ status: reply.statusCode }),
        err: (error: Error) => ({ type: error.name, message: error.message, stack: error.stack }),
      },
    },
    destination,
  );
  const flushable = destination as DestinationStream & { flushSync?: () => void };
  return {
    logger,
    flush: () => {
      try {
        flushable.flushSync?.();
      } catch {
        // nothing buffered, or the stream is not ready yet
      }
    },
  };
}

/** Nest's Logger (and every `new Logger(context)` of the application) written to the same pino logger. */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}

  log(message: unknown, ...rest: unknown[]): void {
    this.#write('info', message, rest);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.#write('error', message, rest);
  }
  warn(message: unknown, ...rest: unknown[]): void {
    this.#write('warn', message, rest);
  }
  debug(message: unknown, ...rest: unknown[]): void {
    this.#write('debug', message, rest);
  }
  verbose(message: unknown, ...rest: unknown[]): void {
    this.#write('trace', message, rest);
  }
  fatal(message: unknown, ...rest: unknown[]): void {
    this.#write('fatal', message, rest);
  }

  #write(level: Level, message: unknown, rest: unknown[]): void {
    if (!this.logger.isLevelEnabled(level)) return;
    // Nest passes the context last; an error's stack comes before it.
    const context = rest.length > 0 && typeof rest[rest.length - 1] === 'string' ? (rest[rest.length - 1] as string) : undefined;
    const stack = level === 'error' && rest.length >= 2 && typeof rest[0] === 'string' ? rest[0] : undefined;
    const fields: Record<string, unknown> = {};
    if (context !== undefined) fields['context'] = context;
    if (stack !== undefined) fields['stack'] = stack;
    if (message instanceof Error) {
      fields['err'] = message;
      this.logger[level](fields, message.message);
    } else this.logger[level](fields, typeof message === 'string' ? message : JSON.stringify(message));
  }
}

/**
 * Fastify's request log lines, one per answered request (debug for a success, info for a refusal or bad
 * request, error for a failure) and nothing at its start: the application's own id of the request
 * (`correlationId`, given by `idOf`; never a header the caller chose), method, route template, status,
 * milliseconds, and the processing serial when the answer named one. Never the URL (it may carry a
 * number), headers or body. A success is debug: a command that succeeded is an event of the log already,
 * under its serial.
 */
export class RequestLogController extends LogController {
  constructor(
    private readonly logger: Logger,
    private readonly idOf: (request: FastifyRequest) => string | undefined,
  ) {
    super({ disableRequestLogging: false });
  }

  override incomingRequest(): void {}

  override routeNotFound(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const status = reply.statusCode;
    // Refusals and bad requests are info, failures error.
    const level: Level = error != null || status >= 500 ? 'error' : status >= 400 ? 'info' : 'debug';
    const log = this.logger;
    if (!log.isLevelEnabled(level)) return;
    const fields = {
      correlationId: this.idOf(request),
      method: request.method,
      route: request.routeOptions.url ?? UNMATCHED,
      status,
      ms: Math.round(reply.elapsedTime * 100) / 100,
      serial: request.loggedSerial,
    };
    if (error != null) log.error({ ...fields, err: { type: error.name, message: error.message } }, 'request errored');
    else log[level](fields, 'request');
  }

  override defaultErrorLog(error: Error, request: FastifyRequest, reply: FastifyReply): void {
    if (reply.statusCode >= 500) this.logger.error({ correlationId: this.idOf(request), route: request.routeOptions.url ?? UNMATCHED, err: error }, 'request failed');
  }
}

/** A serial as the hub writes them: YYYYMMDD, node id, daily sequence. */
const SERIAL_IN_ANSWER = /"serial":"(\d{20})"/;
const SMALL_ANSWER = 16_384;

/**
 * Notes the processing serial a command's answer names (a command's result or a recorded refusal's
 * problem), for the request's log line: a look at small answers to other than GET, or refusals; nothing
 * is parsed, logged or changed. Only for answers whose request line is logged at the configured level.
 */
export function captureSerials(fastify: FastifyInstance, logger: Logger): void {
  if (!logger.isLevelEnabled('info')) return;
  const all = logger.isLevelEnabled('debug');
  fastify.decorateRequest('loggedSerial', undefined);
  fastify.addHook('onSend', (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (error: null, payload: unknown) => void) => {
    // Successes are logged at debug only; refusals name their serial in the problem.
    if ((reply.statusCode >= 400 || (all && request.method !== 'GET')) && typeof payload === 'string' && payload.length <= SMALL_ANSWER) {
      const match = SERIAL_IN_ANSWER.exec(payload);
      if (match !== null) request.loggedSerial = match[1];
    }
    done(null, payload);
  });
}
