import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { plainToInstance } from 'class-transformer';
import { IsIn, IsOptional, IsString, Matches, ValidateBy, validateSync, type ValidationError } from 'class-validator';
import { isIP } from 'node:net';
import type { LogLevel } from '@nestjs/common';
import { DEFAULT_RATE_LIMITS, RATE_LIMIT_VARIABLES, readRateLimits, type RateLimitSettings } from '../rate-limits/rate-limit-settings.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'] as const;
export type HubLogLevel = (typeof LOG_LEVELS)[number];

const MAX_BODY_LIMIT_BYTES = 100 * 1024 * 1024;
export const DEFAULT_BODY_TIMEOUT_MS = 5000;

/** The linkage (照会・提供) settings: the code mapper's Redis, provider calls, the authorization table. */
export interface LinkageSettings {
  /** The Redis of the code mapper; undefined: no Redis (or a Redis Cluster, below), the store answers every translation. */
  readonly redisUrl: string | undefined;
  /** Seed nodes (`host:port`) of a Redis Cluster for the code mapper, instead of `redisUrl`; undefined: none. */
  readonly redisCluster?: readonly string[] | undefined;
  /** Key prefix of this hub's mapper in Redis; undefined: `ll-<instance id>` (see HubInstance). */
  readonly redisPrefix: string | undefined;
  /** Every Redis mapper operation (one batch) must finish within this, or the breaker opens. Default 2000 ms. */
  readonly redisTimeoutMs?: number;
  /** The breaker's cool-down: how long the store answers before one call probes Redis again. Default 1000 ms. */
  readonly redisCooldownMs?: number;
  /** A Redis mapper operation not answered within this counts as a stall: the store answers it and the breaker opens. Default 100 ms. */
  readonly redisSlowMs?: number;
  /** A provider's intermediate server must answer within this, or the query fails with PROVIDER_TIMEOUT. */
  readonly providerTimeoutMs: number;
  /** Single provision requests to one provider in the same turn of the event loop go as one batch call (HUB_PROVIDER_COALESCE). */
  readonly coalesceProvisions: boolean;
  /** Largest answer (bytes relayed) accepted from a provider; larger ends the query in ANSWER_TOO_LARGE. */
  readonly maxAnswerBytes: number;
  /** Absolute path of the authorization table published at start when it is newer than the one in force; undefined: publish nothing, use the versions the log holds. */
  readonly authorizationTableFile: string | undefined;
  /** Absolute path of the self-disclosure table (自己情報表示) published at start the same way; undefined: publish nothing. */
  readonly selfDisclosureTableFile?: string | undefined;
}

export const DEFAULT_LINKAGE: Omit<LinkageSettings, 'authorizationTableFile'> = {
  redisUrl: 'redis://127.0.0.1:6379',
  redisPrefix: undefined,
  redisTimeoutMs: 2000,
  redisCooldownMs: 1000,
  redisSlowMs: 100,
  providerTimeoutMs: 5000,
  coalesceProvisions: true,
  maxAnswerBytes: 1024 * 1024,
};

/** The Kafka relay of committed events (libs/relay). */
export interface KafkaRelaySettings {
  /** Bootstrap servers, `host:port`. */
  readonly brokers: readonly string[];
  readonly topic: string;
}

/** Kafka topic names: 1-249 letters, digits, ".", "_" or "-" (Kafka's own rule); "." and ".." are not names. */
const KAFKA_TOPIC = /^(?!\.{1,2}$)[A-Za-z0-9._-]{1,249}$/;
/** A web origin: http(s)://host[:port], no path (what a browser puts in clientDataJSON). */
const ORIGIN = /https?:\/\/(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}))(?::\d{1,5})?/.source;
const KAFKA_BROKER = /(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]{0,252}):\d{1,5}/.source;

/** Why one `host:port` of HUB_REDIS_CLUSTER is not a node address, or undefined when it is. */
function redisNodeProblem(node: string): string | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(node);
  if (m === null) return `"${node}" is not host:port (an IPv6 address in brackets)`;
  const host = m[1] ?? m[2]!;
  if (m[1] !== undefined ? isIP(host) !== 6 : isIP(host) === 0 && !HOSTNAME.test(host)) return `"${node}": ${JSON.stringify(host)} is not an IP address or a host name`;
  const port = Number(m[3]);
  if (port < 1 || port > 65_535) return `"${node}": port must be from 1 to 65535`;
  return undefined;
}

export interface CheckpointSettings {
  readonly everyEvents: number;
  readonly everyMs: number;
  readonly origin: string;
}

/** The hub's check of its own log against its stored Merkle tree and signed checkpoints (audit/self-check.service.ts). */
export interface SelfCheckSettings {
  /** Check at start, before serving; false: only when the operator asks (POST /v1/audit/self-checks). */
  readonly atStart: boolean;
  /**
   * A log of at most this many events is re-hashed whole at start; a longer one from the verified mark
   * before serving, and the rest by a background scrub right after.
   */
  readonly fullMaxEvents: number;
}

export const DEFAULT_SELF_CHECK: SelfCheckSettings = { atStart: true, fullMaxEvents: 2_000_000 };

/** How refusals of callers the hub could not identify are counted (I6): one event per source and interval. */
export interface UnidentifiedRefusalSettings {
  readonly intervalMs: number;
  /** Sources recorded one by one per interval; the rest are summed into one more event. */
  readonly maxSources: number;
  /**
   * Requests without a valid credential heard from one source per interval; beyond it the source is
   * answered 429 TOO_MANY_UNAUTHENTICATED_REQUESTS (still counted) until the interval ends.
   */
  readonly perSource: number;
}

export const DEFAULT_UNIDENTIFIED_REFUSALS: UnidentifiedRefusalSettings = { intervalMs: 60_000, maxSources: 100, perSource: 120 };

/** Citizens' passkey sign-in (WebAuthn, the hub verifies every ceremony) and the hub's citizen sessions. */
export interface CitizenSignInSettings {
  /** Origins a ceremony's clientDataJSON may name (the portal's). */
  readonly portalOrigins: readonly string[];
  /** The WebAuthn relying party id (a registrable domain of the portal's origin). */
  readonly rpId: string;
  readonly rpName: string;
  /** A session unused this long ends. */
  readonly sessionIdleSeconds: number;
  /** A session ends this long after it began, used or not. */
  readonly sessionMaxSeconds: number;
}

export const DEFAULT_CITIZEN_SIGN_IN: CitizenSignInSettings = {
  portalOrigins: ['http://localhost:3300'],
  rpId: 'localhost',
  rpName: 'マイナンバー情報連携 開示ポータル',
  sessionIdleSeconds: 900,
  sessionMaxSeconds: 28_800,
};

/**
 * Where the hub's log lives. `sqlite`: the embedded ledger file under the data dir (one hub process).
 * `kurrentdb`: one stream of a KurrentDB server or cluster, shared by several hubs of which one leads
 * (appends, signs checkpoints) and the others stand by (serve reads, take over when it dies).
 */
export type EventStoreSettings =
  | { readonly kind: 'sqlite' }
  | {
      readonly kind: 'kurrentdb';
      /** The KurrentDB connection string as given (may hold credentials: never log it, see `display`). */
      readonly connection: string;
      /** The connection string with any user:password replaced by `***`, for logs and readiness. */
      readonly display: string;
      /** The stream that holds the log (HUB_KURRENTDB_LOG_STREAM); the lease is `<it>-leadership`. */
      readonly logStream: string;
    };

/** Leadership among the hubs on one KurrentDB (apps/hub/src/leadership). */
export interface LeadershipSettings {
  /** How often the leader renews its lease. */
  readonly renewMs: number;
  /** A lease not renewed for this long is taken over by a standby. */
  readonly leaseMs: number;
}

export const DEFAULT_LEADERSHIP: LeadershipSettings = { renewMs: 1000, leaseMs: 4000 };

/** Delivery of pushes to subscribers' intermediate servers (docs/pushes.md). */
export interface PushSettings {
  /** A push not delivered within this after it was issued ends in PushAbandoned (HUB_PUSH_DEADLINE_MS). */
  readonly deadlineMs: number;
  /** The first retry's delay, doubled per failed try up to retryMaxMs, half of it jittered (HUB_PUSH_RETRY_BASE_MS). */
  readonly retryBaseMs: number;
  /** The longest wait between two tries of one push (HUB_PUSH_RETRY_MAX_MS). */
  readonly retryMaxMs: number;
  /** One try's time limit (HUB_PUSH_TIMEOUT_MS). */
  readonly timeoutMs: number;
  /** Deliveries in flight at once (HUB_PUSH_CONCURRENCY). */
  readonly concurrency: number;
}
export const DEFAULT_PUSHES: PushSettings = { deadlineMs: 86_400_000, retryBaseMs: 1000, retryMaxMs: 600_000, timeoutMs: 5000, concurrency: 64 };

/** The leader's fan-out of nationwide notice batches (docs/notice-batches.md). */
export interface NoticeBatchSettings {
  /** Recipients appended per chunk (HUB_NOTICE_BATCH_CHUNK); four chunks are in flight at once. */
  readonly chunk: number;
  /** A pause after each chunk, to leave the hub's disk and CPU to other work (HUB_NOTICE_BATCH_PAUSE_MS, default 0). */
  readonly pauseMs: number;
  /**
   * The body limit of `POST /v1/notice-batches` alone (HUB_NOTICE_BATCH_BODY_LIMIT_BYTES, default 1 MiB):
   * 10,000 codes take ≈ 300 KB; every other route keeps HUB_BODY_LIMIT_BYTES. Never below HUB_BODY_LIMIT_BYTES.
   */
  readonly bodyLimitBytes?: number;
}
export const DEFAULT_NOTICE_BATCH_BODY_LIMIT_BYTES = 1024 * 1024;
export const DEFAULT_NOTICE_BATCHES: NoticeBatchSettings = { chunk: 2000, pauseMs: 0, bodyLimitBytes: DEFAULT_NOTICE_BATCH_BODY_LIMIT_BYTES };

/** The leader's subscription sweep (docs/subscriptions.md). */
export interface SubscriptionSettings {
  /** How often the leader records expiries and the ends a withdrawn push brings (HUB_SUBSCRIPTION_SWEEP_MS). */
  readonly sweepIntervalMs: number;
}
export const DEFAULT_SUBSCRIPTIONS: SubscriptionSettings = { sweepIntervalMs: 60_000 };

/**
 * TLS (docs/tls.md): HUB_TLS=on serves HTTPS and gRPC over TLS with the hub's own CA (keys/tls-ca.*),
 * admits agencies only with the client certificate issued at their registration (mutual TLS), and calls
 * intermediate servers over TLS checking their certificate against their registration. On is the
 * process's default (loadHubConfig: `npm start`, `npm run start:hub`, the built main.js); TLS_OFF is only
 * the default of a HubConfig made in code (tests driving the hub in process, with no socket).
 */
export interface TlsSettings {
  readonly enabled: boolean;
  /** Host names and addresses of the hub's server certificate (HUB_TLS_HOSTS; HUB_HOST is always among them). */
  readonly hostNames: readonly string[];
  /** How long an agency certificate is valid (HUB_TLS_AGENCY_CERT_DAYS). */
  readonly agencyCertificateDays: number;
  /**
   * HUB_TLS_REQUIRE_CSR=on: registration and renewal must carry the agency's certificate signing request
   * (CSR_REQUIRED otherwise), so the hub never makes an agency's private key. Off (the default, the demo's
   * path): without a CSR the hub makes the key and answers it once.
   */
  readonly requireCsr?: boolean;
}
export const TLS_OFF: TlsSettings = { enabled: false, hostNames: ['localhost', '127.0.0.1', '::1'], agencyCertificateDays: 365 };

/** The URL other hubs name this hub by when it leads (HUB_ADVERTISED_URL), else `https://HUB_HOST:HUB_PORT` (`http://` with HUB_TLS=off). */
export function advertisedUrl(config: Pick<HubConfig, 'host' | 'port' | 'advertisedUrl'> & { readonly tls?: Pick<TlsSettings, 'enabled'> }): string {
  const scheme = config.tls?.enabled === true ? 'https' : 'http';
  return config.advertisedUrl ?? `${scheme}://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`;
}

/** A KurrentDB connection string: `kurrentdb://` or `esdb://` (with `+discover`), user info, hosts, `?settings`. */
const KURRENTDB_URL = /^(?:kurrentdb|esdb)(?:\+discover)?:\/\/(?:([^@/?#\s]*)@)?([^@/?#\s]+)\/?(?:\?[^#\s]*)?$/;

/** The connection string with its user info masked. */
export function maskConnection(text: string): string {
  return text.replace(/^([a-z+]+:\/\/)[^@/?#\s]*@/i, '$1***@');
}

/** Why HUB_EVENT_STORE is not `sqlite` or a KurrentDB connection string, or undefined when it is. */
export function eventStoreProblem(value: string): string | undefined {
  const shown = JSON.stringify(maskConnection(value));
  const expected = 'must be "sqlite" (the embedded ledger, the default) or a KurrentDB connection string kurrentdb://host:port[,host:port…][?tls=false] (esdb:// accepted)';
  if (value === 'sqlite') return undefined;
  const m = KURRENTDB_URL.exec(value);
  if (m === null) return `${expected}, got ${shown}`;
  for (const node of m[2]!.split(',')) {
    const n = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s]+))(?::(\d{1,5}))?$/.exec(node);
    const host = n?.[1] ?? n?.[2];
    if (n === null || host === undefined || (n[1] !== undefined ? isIP(host) !== 6 : isIP(host) === 0 && !HOSTNAME.test(host))) {
      return `${expected}: ${JSON.stringify(node)} is not host[:port], got ${shown}`;
    }
    if (n[3] !== undefined && (Number(n[3]) < 1 || Number(n[3]) > 65_535)) return `${expected}: ${JSON.stringify(node)}: port must be from 1 to 65535, got ${shown}`;
  }
  return undefined;
}

/** The ledger's filters by default: 4 MiB each, the ledger's own default (DEFAULT_FILTER_BYTES). */
export const DEFAULT_LEDGER_FILTER_MIB = 4;
const LEDGER_FILTER_MIB_CHOICES = Array.from({ length: 9 }, (_, i) => String(2 ** i));

/** The hub's configuration, validated once at boot. Nothing else reads the environment. */
export class HubConfig {
  constructor(
    readonly host: string,
    readonly port: number,
    /** Absolute. Holds ledger.sqlite and keys/. */
    readonly dataDir: string,
    /** 0..99; the node part of every processing serial number this hub allocates. */
    readonly nodeId: number,
    readonly bodyLimitBytes: number,
    readonly logLevel: HubLogLevel,
    /** Absolute path of the municipality list in force. */
    readonly municipalitiesFile: string,
    /** Signed checkpoints (I3): every N events or T ms, whichever first; origin = signing key name. */
    readonly checkpoints: CheckpointSettings = { everyEvents: 1000, everyMs: 10_000, origin: `linkage-ledger.example/hub/${String(nodeId).padStart(2, '0')}` },
    readonly linkage: LinkageSettings = { ...DEFAULT_LINKAGE, authorizationTableFile: defaultSchemaFile('authorization/authorization-table.v2.json'), selfDisclosureTableFile: defaultSchemaFile('authorization/self-disclosure-table.v1.json') },
    /** The gRPC edge's port; undefined: no gRPC server. */
    readonly grpcPort: number | undefined = undefined,
    /** Relay every committed event to Kafka; undefined: no relay (the default). */
    readonly kafka: KafkaRelaySettings | undefined = undefined,
    /** A request (headers and body) must have arrived within this, else 408 and the connection is closed. */
    readonly bodyTimeoutMs: number = DEFAULT_BODY_TIMEOUT_MS,
    readonly selfCheck: SelfCheckSettings = DEFAULT_SELF_CHECK,
    readonly unidentifiedRefusals: UnidentifiedRefusalSettings = DEFAULT_UNIDENTIFIED_REFUSALS,
    readonly citizenSignIn: CitizenSignInSettings = DEFAULT_CITIZEN_SIGN_IN,
    /**
     * Addresses or CIDR ranges of proxies that call on others' behalf (the citizen portal): from these the
     * caller's source is the last address of X-Forwarded-For they add, for the per-source count and limit
     * of unidentified refusals; from anyone else that header is ignored. Empty: none trusted.
     */
    readonly trustedProxies: readonly string[] = [],
    /** The log: the embedded SQLite ledger (default) or KurrentDB (HUB_EVENT_STORE). */
    readonly eventStore: EventStoreSettings = { kind: 'sqlite' },
    /** A name unique per hub process (HUB_INSTANCE_ID); hubs on one KurrentDB name their leader by it. */
    readonly instanceId: string = defaultInstanceId(),
    readonly leadership: LeadershipSettings = DEFAULT_LEADERSHIP,
    /** How clients reach this hub (HUB_ADVERTISED_URL): a standby names the leader by it. */
    readonly advertisedUrl: string | undefined = undefined,
    readonly pushes: PushSettings = DEFAULT_PUSHES,
    readonly noticeBatches: NoticeBatchSettings = DEFAULT_NOTICE_BATCHES,
    readonly subscriptions: SubscriptionSettings = DEFAULT_SUBSCRIPTIONS,
    readonly tls: TlsSettings = TLS_OFF,
    /** Rate limits per agency, citizen and source (HUB_RATE_LIMIT_*, docs/rate-limits.md). */
    readonly rateLimits: RateLimitSettings = DEFAULT_RATE_LIMITS,
    /** MiB of each of the SQLite ledger's three Bloom filters, fixed whatever the log's length (HUB_LEDGER_FILTER_MIB, docs/population-state.md). */
    readonly ledgerFilterMiB: number = DEFAULT_LEDGER_FILTER_MIB,
  ) {}

  /** The Merkle tree's own file when the log is not the SQLite ledger (the tree then follows the log through the port). */
  get treePath(): string {
    return join(this.dataDir, 'merkle-tree.sqlite');
  }

  get ledgerPath(): string {
    return join(this.dataDir, 'ledger.sqlite');
  }

  get keysDir(): string {
    return join(this.dataDir, 'keys');
  }

  /** The Nest log levels at or above the configured one. */
  get logLevels(): LogLevel[] {
    return LOG_LEVELS.slice(0, LOG_LEVELS.indexOf(this.logLevel) + 1) as LogLevel[];
  }
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

function IsHost() {
  return ValidateBy({
    name: 'isHost',
    validator: {
      validate: (v: unknown) => typeof v === 'string' && (isIP(v) !== 0 || HOSTNAME.test(v)),
      defaultMessage: (a) => `must be an IP address or a host name, got ${JSON.stringify(a?.value)}`,
    },
  });
}

function IsIntegerInRange(min: number, max: number) {
  return ValidateBy({
    name: 'isIntegerInRange',
    validator: {
      validate: (v: unknown) => typeof v === 'string' && /^\d{1,15}$/.test(v) && Number(v) >= min && Number(v) <= max,
      defaultMessage: (a) => `must be an integer from ${min} to ${max}, got ${JSON.stringify(a?.value)}`,
    },
  });
}

/** The raw variables, as strings; defaults filled in. Validated by class-validator, then converted. */
class HubEnvironment {
  @IsHost()
  HUB_HOST = '127.0.0.1';

  @IsIntegerInRange(0, 65_535)
  HUB_PORT = '8080';

  @IsString()
  @Matches(/^[^\0]+$/, { message: 'must be a non-empty path' })
  HUB_DATA_DIR = './data';

  @Matches(/^\d{2}$/, { message: (a) => `must be exactly 2 digits (e.g. 01), got ${JSON.stringify(a.value)}` })
  HUB_NODE_ID = '01';

  @IsIntegerInRange(1024, MAX_BODY_LIMIT_BYTES)
  HUB_BODY_LIMIT_BYTES = '65536';

  @IsIntegerInRange(100, 600_000)
  HUB_BODY_TIMEOUT_MS = String(DEFAULT_BODY_TIMEOUT_MS);

  @IsIn(LOG_LEVELS, { message: (a) => `must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(a.value)}` })
  HUB_LOG_LEVEL: string = 'log';

  @IsOptional()
  @IsString()
  HUB_MUNICIPALITIES_FILE?: string;

  @IsIntegerInRange(1, 1_000_000_000)
  HUB_CHECKPOINT_EVERY_EVENTS = '1000';

  @IsIntegerInRange(10, 86_400_000)
  HUB_CHECKPOINT_EVERY_MS = '10000';

  @Matches(/^(?:off|rediss?:\/\/\S+)$/, { message: (a) => `must be a redis:// or rediss:// URL, or "off" (no Redis: the store answers translations), got ${JSON.stringify(a.value)}` })
  HUB_REDIS_URL = DEFAULT_LINKAGE.redisUrl!;

  @IsOptional()
  @ValidateBy({
    name: 'isRedisClusterNodes',
    validator: {
      validate: (v: unknown) => typeof v === 'string' && v.split(',').every((n) => redisNodeProblem(n.trim()) === undefined),
      defaultMessage: (a) => {
        const bad = String(a?.value).split(',').map((n) => redisNodeProblem(n.trim())).find((p) => p !== undefined);
        return `must be comma-separated host:port seed nodes of a Redis Cluster (e.g. 10.0.0.1:7000,10.0.0.2:7000): ${bad ?? 'not a list'}`;
      },
    },
  })
  HUB_REDIS_CLUSTER?: string;

  @IsOptional()
  @Matches(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/, { message: 'must be 1-64 letters, digits, ".", "_", ":" or "-"' })
  HUB_REDIS_PREFIX?: string;

  @IsIntegerInRange(10, 600_000)
  HUB_REDIS_TIMEOUT_MS = String(DEFAULT_LINKAGE.redisTimeoutMs);

  @IsIntegerInRange(10, 3_600_000)
  HUB_REDIS_COOLDOWN_MS = String(DEFAULT_LINKAGE.redisCooldownMs);

  @IsIntegerInRange(1, 600_000)
  HUB_REDIS_SLOW_MS = String(DEFAULT_LINKAGE.redisSlowMs);

  @IsIntegerInRange(10, 600_000)
  HUB_PROVIDER_TIMEOUT_MS = String(DEFAULT_LINKAGE.providerTimeoutMs);

  @IsIn(['on', 'off'], { message: (a) => `must be on or off, got ${JSON.stringify(a.value)}` })
  HUB_PROVIDER_COALESCE = 'on';

  @IsIntegerInRange(1024, MAX_BODY_LIMIT_BYTES)
  HUB_MAX_ANSWER_BYTES = String(DEFAULT_LINKAGE.maxAnswerBytes);

  @IsOptional()
  @IsString()
  HUB_AUTHORIZATION_TABLE_FILE?: string;

  @IsOptional()
  @IsString()
  HUB_SELF_DISCLOSURE_TABLE_FILE?: string;

  @IsOptional()
  @IsIntegerInRange(0, 65_535)
  HUB_GRPC_PORT?: string;

  @IsOptional()
  @Matches(/^[\x21-\x2a\x2c-\x7e]{1,200}$/, { message: 'must be 1-200 visible ASCII characters without "+" (it is the signing key name)' })
  HUB_CHECKPOINT_ORIGIN?: string;

  @IsOptional()
  @Matches(new RegExp(`^\\s*${KAFKA_BROKER}(?:\\s*,\\s*${KAFKA_BROKER})*\\s*$`), {
    message: (a) => `must be comma-separated host:port Kafka bootstrap servers, got ${JSON.stringify(a.value)}`,
  })
  HUB_KAFKA_BROKERS?: string;

  @Matches(KAFKA_TOPIC, { message: (a) => `must be a Kafka topic name (1-249 letters, digits, ".", "_", "-"), got ${JSON.stringify(a.value)}` })
  HUB_KAFKA_TOPIC = 'linkage-ledger.events';

  @IsIn(['on', 'off'], { message: (a) => `must be on or off, got ${JSON.stringify(a.value)}` })
  HUB_SELF_CHECK = 'on';

  @IsIntegerInRange(0, 1_000_000_000_000)
  HUB_SELF_CHECK_FULL_MAX_EVENTS = String(DEFAULT_SELF_CHECK.fullMaxEvents);

  /** MiB of each of the SQLite ledger's three Bloom filters (libs/ledger bloom-filter.ts): a power of two, 1 to 256. */
  @IsIn(LEDGER_FILTER_MIB_CHOICES, { message: (a) => `must be a power of two from 1 to 256 (MiB per filter), got ${JSON.stringify(a.value)}` })
  HUB_LEDGER_FILTER_MIB = String(DEFAULT_LEDGER_FILTER_MIB);

  @IsIntegerInRange(100, 86_400_000)
  HUB_UNIDENTIFIED_REFUSALS_INTERVAL_MS = String(DEFAULT_UNIDENTIFIED_REFUSALS.intervalMs);

  @IsIntegerInRange(1, 100_000)
  HUB_UNIDENTIFIED_REFUSALS_MAX_SOURCES = String(DEFAULT_UNIDENTIFIED_REFUSALS.maxSources);

  @IsIntegerInRange(1, 1_000_000)
  HUB_UNIDENTIFIED_REFUSALS_PER_SOURCE = String(DEFAULT_UNIDENTIFIED_REFUSALS.perSource);

  @Matches(new RegExp(`^\\s*${ORIGIN}(?:\\s*,\\s*${ORIGIN})*\\s*$`), { message: (a) => `must be comma-separated origins (scheme://host[:port], no path), got ${JSON.stringify(a.value)}` })
  HUB_PORTAL_ORIGINS = DEFAULT_CITIZEN_SIGN_IN.portalOrigins.join(',');

  @ValidateBy({
    name: 'isProxyList',
    validator: {
      validate: (v: unknown) => typeof v === 'string' && (v.trim() === '' || v.split(',').every((part) => isAddressOrRange(part.trim()))),
      defaultMessage: (a) => `must be comma-separated IP addresses or CIDR ranges (e.g. 127.0.0.1,10.0.0.0/8), or empty, got ${JSON.stringify(a?.value)}`,
    },
  })
  HUB_TRUSTED_PROXIES = '';

  @Matches(/^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/, { message: (a) => `must be a lowercase domain name (the portal's registrable domain), got ${JSON.stringify(a.value)}` })
  HUB_WEBAUTHN_RP_ID = DEFAULT_CITIZEN_SIGN_IN.rpId;

  @Matches(/^[^\u0000-\u001f\u007f]{1,64}$/u, { message: 'must be 1-64 characters without control characters' })
  HUB_WEBAUTHN_RP_NAME = DEFAULT_CITIZEN_SIGN_IN.rpName;

  @IsIntegerInRange(60, 86_400)
  HUB_CITIZEN_SESSION_IDLE_SECONDS = String(DEFAULT_CITIZEN_SIGN_IN.sessionIdleSeconds);

  @IsIntegerInRange(60, 604_800)
  HUB_CITIZEN_SESSION_MAX_SECONDS = String(DEFAULT_CITIZEN_SIGN_IN.sessionMaxSeconds);

  @ValidateBy({
    name: 'isEventStore',
    validator: {
      validate: (v: unknown) => typeof v === 'string' && eventStoreProblem(v) === undefined,
      defaultMessage: (a) => eventStoreProblem(String(a?.value)) ?? 'must be "sqlite" or a KurrentDB connection string',
    },
  })
  HUB_EVENT_STORE = 'sqlite';

  @IsOptional()
  @Matches(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/, { message: (a) => `must be 1-64 letters, digits, ".", "_", ":" or "-" starting with a letter or digit, got ${JSON.stringify(a.value)}` })
  HUB_INSTANCE_ID?: string;

  @Matches(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, { message: (a) => `must be a KurrentDB stream name of 1-100 letters, digits, ".", "_" or "-" (not a $ system stream), got ${JSON.stringify(a.value)}` })
  HUB_KURRENTDB_LOG_STREAM = 'linkage-ledger';

  @IsOptional()
  @Matches(/^https?:\/\/[^\s/?#]+(?:\/[^\s?#]*)?$/, { message: (a) => `must be an http:// or https:// URL (how clients reach this hub), got ${JSON.stringify(a.value)}` })
  HUB_ADVERTISED_URL?: string;

  @IsIntegerInRange(50, 60_000)
  HUB_LEADERSHIP_RENEW_MS = String(DEFAULT_LEADERSHIP.renewMs);

  @IsIntegerInRange(200, 600_000)
  HUB_LEADERSHIP_LEASE_MS = String(DEFAULT_LEADERSHIP.leaseMs);

  @IsIntegerInRange(100, 31_536_000_000)
  HUB_PUSH_DEADLINE_MS = String(DEFAULT_PUSHES.deadlineMs);

  @IsIntegerInRange(1, 3_600_000)
  HUB_PUSH_RETRY_BASE_MS = String(DEFAULT_PUSHES.retryBaseMs);

  @IsIntegerInRange(1, 86_400_000)
  HUB_PUSH_RETRY_MAX_MS = String(DEFAULT_PUSHES.retryMaxMs);

  @IsIntegerInRange(10, 600_000)
  HUB_PUSH_TIMEOUT_MS = String(DEFAULT_PUSHES.timeoutMs);

  @IsIntegerInRange(1, 4096)
  HUB_PUSH_CONCURRENCY = String(DEFAULT_PUSHES.concurrency);

  @IsIntegerInRange(1, 100_000)
  HUB_NOTICE_BATCH_CHUNK = String(DEFAULT_NOTICE_BATCHES.chunk);

  @IsIntegerInRange(0, 60_000)
  HUB_NOTICE_BATCH_PAUSE_MS = String(DEFAULT_NOTICE_BATCHES.pauseMs);

  @IsIntegerInRange(1024, MAX_BODY_LIMIT_BYTES)
  HUB_NOTICE_BATCH_BODY_LIMIT_BYTES = String(DEFAULT_NOTICE_BATCH_BODY_LIMIT_BYTES);

  @IsIntegerInRange(100, 86_400_000)
  HUB_SUBSCRIPTION_SWEEP_MS = String(DEFAULT_SUBSCRIPTIONS.sweepIntervalMs);

  @IsIn(['on', 'off'], { message: (a) => `must be on or off, got ${JSON.stringify(a.value)}` })
  HUB_TLS = 'on';

  @Matches(/^[A-Za-z0-9.:-]+(?:,[A-Za-z0-9.:-]+)*$/, { message: (a) => `must be comma-separated host names or addresses, got ${JSON.stringify(a.value)}` })
  HUB_TLS_HOSTS = TLS_OFF.hostNames.join(',');

  @IsIntegerInRange(1, 3650)
  HUB_TLS_AGENCY_CERT_DAYS = String(TLS_OFF.agencyCertificateDays);

  @IsIn(['on', 'off'], { message: (a) => `must be on or off, got ${JSON.stringify(a.value)}` })
  HUB_TLS_REQUIRE_CSR = 'off';
}

/** `<host name>-<pid>`, cut to the 64 characters HUB_INSTANCE_ID allows. */
export function defaultInstanceId(): string {
  const host = hostname().replace(/[^A-Za-z0-9._:-]/g, '-').replace(/^[^A-Za-z0-9]+/, '') || 'hub';
  const pid = `-${process.pid}`;
  return host.slice(0, 64 - pid.length) + pid;
}

export class HubConfigError extends Error {
  readonly code = 'INVALID_CONFIGURATION';
  constructor(readonly problems: readonly { variable: string; message: string }[]) {
    super(`invalid hub configuration:\n${problems.map((p) => `  ${p.variable}: ${p.message}`).join('\n')}`);
    this.name = 'HubConfigError';
  }
}

const VARIABLES = [
  'HUB_HOST',
  'HUB_PORT',
  'HUB_DATA_DIR',
  'HUB_NODE_ID',
  'HUB_BODY_LIMIT_BYTES',
  'HUB_BODY_TIMEOUT_MS',
  'HUB_LOG_LEVEL',
  'HUB_MUNICIPALITIES_FILE',
  'HUB_CHECKPOINT_EVERY_EVENTS',
  'HUB_CHECKPOINT_EVERY_MS',
  'HUB_CHECKPOINT_ORIGIN',
  'HUB_REDIS_URL',
  'HUB_REDIS_CLUSTER',
  'HUB_REDIS_PREFIX',
  'HUB_REDIS_TIMEOUT_MS',
  'HUB_REDIS_COOLDOWN_MS',
  'HUB_REDIS_SLOW_MS',
  'HUB_PROVIDER_TIMEOUT_MS',
  'HUB_PROVIDER_COALESCE',
  'HUB_MAX_ANSWER_BYTES',
  'HUB_AUTHORIZATION_TABLE_FILE',
  'HUB_SELF_DISCLOSURE_TABLE_FILE',
  'HUB_GRPC_PORT',
  'HUB_KAFKA_BROKERS',
  'HUB_KAFKA_TOPIC',
  'HUB_SELF_CHECK',
  'HUB_SELF_CHECK_FULL_MAX_EVENTS',
  'HUB_LEDGER_FILTER_MIB',
  'HUB_UNIDENTIFIED_REFUSALS_INTERVAL_MS',
  'HUB_UNIDENTIFIED_REFUSALS_MAX_SOURCES',
  'HUB_UNIDENTIFIED_REFUSALS_PER_SOURCE',
  'HUB_PORTAL_ORIGINS',
  'HUB_TRUSTED_PROXIES',
  'HUB_WEBAUTHN_RP_ID',
  'HUB_WEBAUTHN_RP_NAME',
  'HUB_CITIZEN_SESSION_IDLE_SECONDS',
  'HUB_CITIZEN_SESSION_MAX_SECONDS',
  'HUB_EVENT_STORE',
  'HUB_INSTANCE_ID',
  'HUB_KURRENTDB_LOG_STREAM',
  'HUB_ADVERTISED_URL',
  'HUB_LEADERSHIP_RENEW_MS',
  'HUB_LEADERSHIP_LEASE_MS',
  'HUB_PUSH_DEADLINE_MS',
  'HUB_PUSH_RETRY_BASE_MS',
  'HUB_PUSH_RETRY_MAX_MS',
  'HUB_PUSH_TIMEOUT_MS',
  'HUB_PUSH_CONCURRENCY',
  'HUB_NOTICE_BATCH_CHUNK',
  'HUB_NOTICE_BATCH_PAUSE_MS',
  'HUB_NOTICE_BATCH_BODY_LIMIT_BYTES',
  'HUB_SUBSCRIPTION_SWEEP_MS',
  'HUB_TLS',
  'HUB_TLS_HOSTS',
  'HUB_TLS_AGENCY_CERT_DAYS',
  'HUB_TLS_REQUIRE_CSR',
  ...RATE_LIMIT_VARIABLES,
] as const;

/**
 * Validates the environment once, at boot. Unset or empty variables take their defaults; every bad
 * variable is reported in one HubConfigError. Relative paths resolve against `cwd`.
 */
export function loadHubConfig(env: Readonly<Record<string, string | undefined>>, cwd: string = process.cwd()): HubConfig {
  const given: Record<string, string> = {};
  for (const name of VARIABLES) {
    const value = env[name];
    if (value !== undefined && value !== '') given[name] = value;
  }
  const raw = plainToInstance(HubEnvironment, given);
  const errors = validateSync(raw, { forbidUnknownValues: true });
  const problems = errors.flatMap((e: ValidationError) =>
    Object.values(e.constraints ?? {}).map((message) => ({ variable: e.property, message })),
  );
  if (given['HUB_REDIS_CLUSTER'] !== undefined && given['HUB_REDIS_URL'] !== undefined) {
    problems.push({
      variable: 'HUB_REDIS_CLUSTER',
      message: `HUB_REDIS_CLUSTER and HUB_REDIS_URL are mutually exclusive: the code mapper uses one Redis or one Redis Cluster; unset HUB_REDIS_URL (got ${JSON.stringify(given['HUB_REDIS_URL'])}) to use the cluster`,
    });
  }
  const renewMs = Number(raw.HUB_LEADERSHIP_RENEW_MS);
  const leaseMs = Number(raw.HUB_LEADERSHIP_LEASE_MS);
  if (leaseMs < 2 * renewMs) {
    problems.push({
      variable: 'HUB_LEADERSHIP_LEASE_MS',
      message: `must be at least twice HUB_LEADERSHIP_RENEW_MS (${renewMs} ms), so that one late renewal does not hand leadership over; got ${leaseMs}`,
    });
  }
  const redisCluster = raw.HUB_REDIS_CLUSTER === undefined ? undefined : [...new Set(raw.HUB_REDIS_CLUSTER.split(',').map((n) => n.trim()))];
  const municipalitiesFile = raw.HUB_MUNICIPALITIES_FILE !== undefined ? resolve(cwd, raw.HUB_MUNICIPALITIES_FILE) : defaultMunicipalitiesFile();
  if (problems.length === 0 && !existsSync(municipalitiesFile)) {
    problems.push({ variable: 'HUB_MUNICIPALITIES_FILE', message: `no file at ${municipalitiesFile}` });
  }
  const tableSetting = raw.HUB_AUTHORIZATION_TABLE_FILE;
  const tableFile =
    tableSetting === 'none' ? undefined : tableSetting !== undefined ? resolve(cwd, tableSetting) : defaultSchemaFile('authorization/authorization-table.v2.json');
  if (problems.length === 0 && tableFile !== undefined && !existsSync(tableFile)) {
    problems.push({ variable: 'HUB_AUTHORIZATION_TABLE_FILE', message: `no file at ${tableFile}` });
  }
  const selfDisclosureSetting = raw.HUB_SELF_DISCLOSURE_TABLE_FILE;
  const selfDisclosureFile =
    selfDisclosureSetting === 'none' ? undefined : selfDisclosureSetting !== undefined ? resolve(cwd, selfDisclosureSetting) : defaultSchemaFile('authorization/self-disclosure-table.v1.json');
  if (problems.length === 0 && selfDisclosureFile !== undefined && !existsSync(selfDisclosureFile)) {
    problems.push({ variable: 'HUB_SELF_DISCLOSURE_TABLE_FILE', message: `no file at ${selfDisclosureFile}` });
  }
  const rateLimits = readRateLimits(given);
  problems.push(...rateLimits.problems);
  if (problems.length > 0) throw new HubConfigError(problems);
  return new HubConfig(
    raw.HUB_HOST,
    Number(raw.HUB_PORT),
    resolve(cwd, raw.HUB_DATA_DIR),
    Number(raw.HUB_NODE_ID),
    Number(raw.HUB_BODY_LIMIT_BYTES),
    raw.HUB_LOG_LEVEL as HubLogLevel,
    municipalitiesFile,
    {
      everyEvents: Number(raw.HUB_CHECKPOINT_EVERY_EVENTS),
      everyMs: Number(raw.HUB_CHECKPOINT_EVERY_MS),
      origin: raw.HUB_CHECKPOINT_ORIGIN ?? `linkage-ledger.example/hub/${raw.HUB_NODE_ID}`,
    },
    {
      redisUrl: redisCluster !== undefined || raw.HUB_REDIS_URL === 'off' ? undefined : raw.HUB_REDIS_URL,
      redisCluster,
      redisPrefix: raw.HUB_REDIS_PREFIX,
      redisTimeoutMs: Number(raw.HUB_REDIS_TIMEOUT_MS),
      redisCooldownMs: Number(raw.HUB_REDIS_COOLDOWN_MS),
      redisSlowMs: Number(raw.HUB_REDIS_SLOW_MS),
      providerTimeoutMs: Number(raw.HUB_PROVIDER_TIMEOUT_MS),
      coalesceProvisions: raw.HUB_PROVIDER_COALESCE !== 'off',
      maxAnswerBytes: Number(raw.HUB_MAX_ANSWER_BYTES),
      authorizationTableFile: tableFile,
      selfDisclosureTableFile: selfDisclosureFile,
    },
    raw.HUB_GRPC_PORT === undefined ? undefined : Number(raw.HUB_GRPC_PORT),
    raw.HUB_KAFKA_BROKERS === undefined ? undefined : { brokers: raw.HUB_KAFKA_BROKERS.split(',').map((b) => b.trim()), topic: raw.HUB_KAFKA_TOPIC },
    Number(raw.HUB_BODY_TIMEOUT_MS),
    { atStart: raw.HUB_SELF_CHECK === 'on', fullMaxEvents: Number(raw.HUB_SELF_CHECK_FULL_MAX_EVENTS) },
    { intervalMs: Number(raw.HUB_UNIDENTIFIED_REFUSALS_INTERVAL_MS), maxSources: Number(raw.HUB_UNIDENTIFIED_REFUSALS_MAX_SOURCES), perSource: Number(raw.HUB_UNIDENTIFIED_REFUSALS_PER_SOURCE) },
    {
      portalOrigins: raw.HUB_PORTAL_ORIGINS.split(',').map((o) => o.trim()),
      rpId: raw.HUB_WEBAUTHN_RP_ID,
      rpName: raw.HUB_WEBAUTHN_RP_NAME,
      sessionIdleSeconds: Number(raw.HUB_CITIZEN_SESSION_IDLE_SECONDS),
      sessionMaxSeconds: Number(raw.HUB_CITIZEN_SESSION_MAX_SECONDS),
    },
    raw.HUB_TRUSTED_PROXIES.trim() === '' ? [] : raw.HUB_TRUSTED_PROXIES.split(',').map((p) => p.trim()),
    raw.HUB_EVENT_STORE === 'sqlite' ? { kind: 'sqlite' } : { kind: 'kurrentdb', connection: raw.HUB_EVENT_STORE, display: maskConnection(raw.HUB_EVENT_STORE), logStream: raw.HUB_KURRENTDB_LOG_STREAM },
    raw.HUB_INSTANCE_ID ?? defaultInstanceId(),
    { renewMs, leaseMs },
    raw.HUB_ADVERTISED_URL,
    {
      deadlineMs: Number(raw.HUB_PUSH_DEADLINE_MS),
      retryBaseMs: Number(raw.HUB_PUSH_RETRY_BASE_MS),
      retryMaxMs: Number(raw.HUB_PUSH_RETRY_MAX_MS),
      timeoutMs: Number(raw.HUB_PUSH_TIMEOUT_MS),
      concurrency: Number(raw.HUB_PUSH_CONCURRENCY),
    },
    { chunk: Number(raw.HUB_NOTICE_BATCH_CHUNK), pauseMs: Number(raw.HUB_NOTICE_BATCH_PAUSE_MS), bodyLimitBytes: Math.max(Number(raw.HUB_NOTICE_BATCH_BODY_LIMIT_BYTES), Number(raw.HUB_BODY_LIMIT_BYTES)) },
    { sweepIntervalMs: Number(raw.HUB_SUBSCRIPTION_SWEEP_MS) },
    { enabled: raw.HUB_TLS === 'on', hostNames: [...new Set([...raw.HUB_TLS_HOSTS.split(','), raw.HUB_HOST])], agencyCertificateDays: Number(raw.HUB_TLS_AGENCY_CERT_DAYS), requireCsr: raw.HUB_TLS_REQUIRE_CSR === 'on' },
    rateLimits.settings,
    Number(raw.HUB_LEDGER_FILTER_MIB),
  );
}

/** An IPv4 or IPv6 address, optionally with a prefix length that fits it. */
function isAddressOrRange(text: string): boolean {
  const [address, prefix, ...rest] = text.split('/');
  if (rest.length > 0 || address === undefined) return false;
  const family = isIP(address);
  if (family === 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

/**
 * `schemas/municipalities.json` of the repository this module belongs to, found by walking up from this
 * file (it runs from apps/hub/src in tests and from dist/apps/hub/src once built), never from the cwd.
 */
export function defaultMunicipalitiesFile(): string {
  return defaultSchemaFile('municipalities.json');
}

/** A file under the repository's `schemas/`, found the same way as the municipality list. */
export function defaultSchemaFile(relative: string): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'schemas', relative);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return join(dirname(fileURLToPath(import.meta.url)), 'schemas', relative);
    dir = parent;
  }
}
