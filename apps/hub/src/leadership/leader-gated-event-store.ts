import { Logger } from '@nestjs/common';
import type { AppendRequest, AppendResult, EventStore, ReadAllOptions, ReadStreamOptions, RecordedEvent, SerialNumber, SerialStatus, SubscribeOptions } from '#ledger';
import { HubProblem } from '../http/hub-problem.js';
import type { Leadership } from './leadership.js';

/** Ledger errors that mean "this hub is not the writer" (a standby, or a leader fenced off the log). */
const NOT_WRITER_CODES = new Set(['NOT_WRITER', 'LOG_CONFLICT']);

/**
 * The hub's log on KurrentDB as its features see it (EVENT_STORE): reads go to the store; appends only
 * while this hub leads. On a standby (or a leader that was just fenced off) an append is refused with
 * 503 NOT_LEADER with this hub's and the leader's instance id (and the leader's URL) when known, and
 * nothing is written: the client sends the command to the leader (or again, after a failover).
 * During a takeover only the hub's own system appends (recovery, the fencing checkpoint) pass.
 */
export class LeaderGatedEventStore implements EventStore {
  private readonly logger = new Logger('LeaderGatedEventStore');

  constructor(
    private readonly inner: EventStore,
    readonly leadership: Leadership,
  ) {}

  /** The store beneath (named `raw` as in the other wrappers, so that a wrapper chain can be looked through). */
  get raw(): EventStore {
    return this.inner;
  }

  async append(request: AppendRequest): Promise<AppendResult> {
    const system = request.metadata.actor.startsWith('system:');
    if (!this.leadership.acceptsCommands && !(system && this.leadership.inTakeover)) throw this.notLeader();
    try {
      return await this.inner.append(request);
    } catch (error) {
      if (error instanceof Error && NOT_WRITER_CODES.has((error as { code?: string }).code ?? '')) {
        if ((error as { code?: string }).code === 'LOG_CONFLICT') this.leadership.fenced(error.message);
        throw this.notLeader();
      }
      // KurrentDB did not answer the append (the server or the network is away): a 503 the client can act
      // on, not an internal error. The server's address and the log stream stay in the hub's own log.
      if (error instanceof Error && (error as { code?: string }).code === 'LOG_UNAVAILABLE') {
        this.logger.warn(error.message);
        throw new HubProblem(
          'LOG_UNAVAILABLE',
          'the hub could not reach its log (KurrentDB) to record the command: it may or may not be recorded; send it again with the same idempotency-key header (a repeat then returns the original outcome), or look it up before sending it again without one',
        );
      }
      throw error;
    }
  }

  private notLeader(): HubProblem {
    const leader = this.leadership.role === 'leader' ? undefined : this.leadership.leader;
    const where = leader === undefined ? 'no leader is known yet (a failover is under way): send it again in a few seconds' : `send it to the leader, hub ${leader.instanceId}${leader.url === undefined ? '' : ` at ${leader.url}`}`;
    return new HubProblem('NOT_LEADER', `this hub (${this.leadership.instanceId}) is a standby and takes no commands; nothing was recorded: ${where}`, {
      instanceId: this.leadership.instanceId,
      ...(leader === undefined ? {} : { leader }),
    });
  }

  readStream(streamId: string, options?: ReadStreamOptions): Promise<readonly RecordedEvent[]> {
    return this.inner.readStream(streamId, options);
  }
  readAll(options?: ReadAllOptions): Promise<readonly RecordedEvent[]> {
    return this.inner.readAll(options);
  }
  readSerial(serial: SerialNumber): Promise<readonly RecordedEvent[]> {
    return this.inner.readSerial(serial);
  }
  serialStatus(serial: SerialNumber): Promise<SerialStatus | undefined> {
    return this.inner.serialStatus(serial);
  }
  openSerials(): Promise<readonly SerialNumber[]> {
    return this.inner.openSerials();
  }
  idempotentOutcome(key: string): Promise<{ readonly requestDigest: string; readonly result: AppendResult } | undefined> {
    return this.inner.idempotentOutcome(key);
  }
  head(): Promise<number> {
    return this.inner.head();
  }
  subscribe(options: SubscribeOptions): AsyncIterable<RecordedEvent> {
    return this.inner.subscribe(options);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * The Leadership behind `store` (the hub's EVENT_STORE or a view over it such as the sealed LEDGER, which
 * exposes what it wraps as `raw`), or null when the log is the embedded SQLite ledger: one hub, always
 * the leader.
 */
export function leadershipOf(store: EventStore): Leadership | null {
  let current: unknown = store;
  for (let depth = 0; depth < 8 && typeof current === 'object' && current !== null; depth++) {
    if (current instanceof LeaderGatedEventStore) return current.leadership;
    current = (current as { raw?: unknown }).raw;
  }
  return null;
}
