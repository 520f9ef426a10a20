import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { isAgencyId } from '#linkage';
import { fromBase64url } from '#sealed-answer';
import type { AgencyTls } from '../hub/tls-fetch.js';
import { TLS_KEY_FILE, certifiesKey } from '../keys/tls-key.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'] as const;
export type AgencyLogLevel = (typeof LOG_LEVELS)[number];

/** The hub side of the configuration: needed by `serve`, `acquire` and `query`, not by `keys` or `load-copies`. */
export interface HubSettings {
  /** No trailing slash. */
  readonly url: string;
  /** The agency's bearer token for the hub. Never logged. */
  readonly token: string;
  /** The hub's Ed25519 provision-signing public key (base64url raw 32 bytes), or undefined: fetched at start. */
  readonly provisionKey: string | undefined;
  readonly timeoutMs: number;
}

/** The intermediate server's configuration, validated once at boot. Nothing else reads the environment. */
export interface AgencyConfig {
  readonly agencyId: string;
  readonly host: string;
  readonly port: number;
  /** Port of the gRPC provision endpoint (schemas/proto/linkage_ledger/v1/intermediate_server.proto); none when unset. */
  readonly grpcPort: number | undefined;
  /** Absolute. Holds agency.sqlite and keys/. */
  readonly dataDir: string;
  readonly hub: HubSettings | undefined;
  /** When set, the staff endpoints require `authorization: Bearer <token>`. Never logged. */
  readonly staffToken: string | undefined;
  readonly bodyLimitBytes: number;
  readonly logLevel: AgencyLogLevel;
  /** After a push, fetch the new value by an ordinary lawful query (AGENCY_PUSH_FETCH=on); default off. */
  readonly pushFetch: boolean;
  /**
   * AGENCY_TLS_FILE: the JSON the hub answered at registration (`certificate`: certificatePem,
   * caCertificatePem, and privateKeyPem when the hub made the key). Without privateKeyPem the certificate
   * is of the node's own key, `keys/tls-key.pem` (made by `tls-request`, whose CSR the hub certified).
   * When set the node serves HTTPS with that certificate and presents it to the hub as its client
   * certificate (mutual TLS); undefined: plain HTTP.
   */
  readonly tls: AgencyTls | undefined;
}

export function databasePath(config: Pick<AgencyConfig, 'dataDir'>): string {
  return join(config.dataDir, 'agency.sqlite');
}

export function keysDir(config: Pick<AgencyConfig, 'dataDir'>): string {
  return join(config.dataDir, 'keys');
}

export class AgencyConfigError extends Error {
  readonly code = 'INVALID_CONFIGURATION';
  constructor(readonly problems: readonly { variable: string; message: string }[]) {
    super(`invalid agency-node configuration:\n${problems.map((p) => `  ${p.variable}: ${p.message}`).join('\n')}`);
    this.name = 'AgencyConfigError';
  }
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
/** Bearer tokens (RFC 6750 b64token), as the hub issues them. */
const TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

export interface LoadOptions {
  /** Whether the command talks to the hub (AGENCY_HUB_URL and a token become required). */
  readonly needsHub: boolean;
  readonly cwd?: string;
  /** Reads AGENCY_TOKEN_FILE and AGENCY_STAFF_TOKEN_FILE; replaceable in tests. */
  readonly readFile?: (path: string) => string;
}

/**
 * Validates the environment once, at boot; every bad variable is reported in one AgencyConfigError
 * (one line each). Unset or empty variables take their defaults. Relative paths resolve against `cwd`.
 */
export function loadAgencyConfig(env: Readonly<Record<string, string | undefined>>, options: LoadOptions): AgencyConfig {
  const cwd = options.cwd ?? process.cwd();
  const read = options.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  const problems: { variable: string; message: string }[] = [];
  const get = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v === '' ? undefined : v;
  };
  const bad = (variable: string, message: string): void => void problems.push({ variable, message });

  const agencyId = get('AGENCY_ID');
  if (agencyId === undefined) bad('AGENCY_ID', 'is required: the agency id registered at the hub (e.g. muroran-city)');
  else if (!isAgencyId(agencyId)) bad('AGENCY_ID', `must be 2-64 lowercase letters, digits or hyphens (e.g. muroran-city), got ${JSON.stringify(agencyId)}`);

  const host = get('AGENCY_HOST') ?? '127.0.0.1';
  if (isIP(host) === 0 && !HOSTNAME.test(host)) bad('AGENCY_HOST', `must be an IP address or a host name, got ${JSON.stringify(host)}`);

  const port = integer('AGENCY_PORT', get('AGENCY_PORT') ?? '8090', 0, 65_535, bad);
  const grpcPortRaw = get('AGENCY_GRPC_PORT');
  const grpcPort = grpcPortRaw === undefined ? undefined : integer('AGENCY_GRPC_PORT', grpcPortRaw, 0, 65_535, bad);
  const bodyLimitBytes = integer('AGENCY_BODY_LIMIT_BYTES', get('AGENCY_BODY_LIMIT_BYTES') ?? String(4 * 1024 * 1024), 1024, 100 * 1024 * 1024, bad);
  const timeoutMs = integer('AGENCY_HUB_TIMEOUT_MS', get('AGENCY_HUB_TIMEOUT_MS') ?? '30000', 100, 600_000, bad);

  const dataDirRaw = get('AGENCY_DATA_DIR');
  if (dataDirRaw === undefined) bad('AGENCY_DATA_DIR', 'is required: the directory for agency.sqlite and the keys (created if missing)');
  else if (dataDirRaw.includes('\0')) bad('AGENCY_DATA_DIR', 'must be a path');

  const logLevel = get('AGENCY_LOG_LEVEL') ?? 'log';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) bad('AGENCY_LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`);

  const pushFetchRaw = get('AGENCY_PUSH_FETCH') ?? 'off';
  if (pushFetchRaw !== 'on' && pushFetchRaw !== 'off') bad('AGENCY_PUSH_FETCH', `must be on or off, got ${JSON.stringify(pushFetchRaw)}`);

  const staffTokenFile = get('AGENCY_STAFF_TOKEN_FILE');
  const staffToken = staffTokenFile === undefined ? undefined : tokenFromFile('AGENCY_STAFF_TOKEN_FILE', resolve(cwd, staffTokenFile), read, bad);

  let hub: HubSettings | undefined;
  const hubUrl = get('AGENCY_HUB_URL');
  const provisionKey = get('AGENCY_HUB_PROVISION_KEY');
  if (provisionKey !== undefined && fromBase64url(provisionKey)?.length !== 32) {
    bad('AGENCY_HUB_PROVISION_KEY', 'must be the hub\'s Ed25519 provision-signing public key: 43 characters of unpadded base64url (raw 32 bytes)');
  }
  if (hubUrl !== undefined && !isHttpUrl(hubUrl)) bad('AGENCY_HUB_URL', `must be an http(s) URL without query or fragment (e.g. http://127.0.0.1:8080), got ${JSON.stringify(hubUrl)}`);
  const tokenFile = get('AGENCY_TOKEN_FILE');
  const tokenValue = get('AGENCY_TOKEN');
  let token: string | undefined;
  if (tokenFile !== undefined && tokenValue !== undefined) bad('AGENCY_TOKEN', 'set either AGENCY_TOKEN_FILE or AGENCY_TOKEN, not both');
  // Read only by the commands that talk to the hub: `keys` and `load-copies` run before the agency is
  // registered, when the file that will hold its token does not exist yet.
  else if (tokenFile !== undefined && options.needsHub) token = tokenFromFile('AGENCY_TOKEN_FILE', resolve(cwd, tokenFile), read, bad);
  else if (tokenValue !== undefined) {
    if (TOKEN.test(tokenValue)) token = tokenValue;
    else bad('AGENCY_TOKEN', 'must be a bearer token (letters, digits and -._~+/ with optional trailing =)');
  }
  if (options.needsHub) {
    if (hubUrl === undefined) bad('AGENCY_HUB_URL', 'is required: the hub\'s base URL (e.g. http://127.0.0.1:8080)');
    if (tokenFile === undefined && tokenValue === undefined) bad('AGENCY_TOKEN_FILE', 'is required (or AGENCY_TOKEN): the agency\'s bearer token for the hub');
  }
  if (hubUrl !== undefined && token !== undefined) {
    hub = { url: hubUrl.replace(/\/+$/, ''), token, provisionKey, timeoutMs };
  }

  const tlsFile = get('AGENCY_TLS_FILE');
  let tls: AgencyTls | undefined;
  if (tlsFile !== undefined) {
    try {
      const parsed = JSON.parse(read(resolve(cwd, tlsFile))) as Partial<Record<keyof AgencyTls, unknown>>;
      const pem = (v: unknown): v is string => typeof v === 'string' && v.includes('-----BEGIN ');
      if (pem(parsed.certificatePem) && pem(parsed.privateKeyPem) && pem(parsed.caCertificatePem)) tls = { certificatePem: parsed.certificatePem, privateKeyPem: parsed.privateKeyPem, caCertificatePem: parsed.caCertificatePem };
      else if (pem(parsed.certificatePem) && parsed.privateKeyPem === undefined && pem(parsed.caCertificatePem) && dataDirRaw !== undefined) {
        // The hub certified the node's own key (the CSR of `tls-request`): the key stays in the data dir.
        const keyPath = join(resolve(cwd, dataDirRaw), 'keys', TLS_KEY_FILE);
        let privateKeyPem: string | undefined;
        try {
          privateKeyPem = read(keyPath);
        } catch (error) {
          bad('AGENCY_TLS_FILE', `${tlsFile} holds no privateKeyPem (a certificate of the node's own key), but ${keyPath} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'}): make the key and its CSR with tls-request before the registration`);
        }
        if (privateKeyPem !== undefined) {
          if (certifiesKey(parsed.certificatePem, privateKeyPem)) tls = { certificatePem: parsed.certificatePem, privateKeyPem, caCertificatePem: parsed.caCertificatePem };
          else bad('AGENCY_TLS_FILE', `the certificate in ${tlsFile} is not of the node's key ${keyPath}: it was issued for another CSR (or the key was made again after it)`);
        }
      } else bad('AGENCY_TLS_FILE', `${tlsFile} must hold certificatePem and caCertificatePem (PEM), and privateKeyPem unless the certificate is of the node's own key (keys/${TLS_KEY_FILE}, tls-request), as the hub answers a registration with HUB_TLS=on`);
    } catch (error) {
      bad('AGENCY_TLS_FILE', `cannot read ${tlsFile} as JSON (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
  }

  if (problems.length > 0) throw new AgencyConfigError(problems);
  return {
    agencyId: agencyId!,
    host,
    port,
    grpcPort,
    dataDir: resolve(cwd, dataDirRaw!),
    hub,
    staffToken,
    bodyLimitBytes,
    logLevel: logLevel as AgencyLogLevel,
    pushFetch: pushFetchRaw === 'on',
    tls,
  };
}

function integer(variable: string, value: string, min: number, max: number, bad: (v: string, m: string) => void): number {
  if (!/^\d{1,15}$/.test(value) || Number(value) < min || Number(value) > max) {
    bad(variable, `must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
    return min;
  }
  return Number(value);
}

function tokenFromFile(variable: string, path: string, read: (p: string) => string, bad: (v: string, m: string) => void): string | undefined {
  let text: string;
  try {
    text = read(path).trim();
  } catch (error) {
    bad(variable, `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    return undefined;
  }
  if (!TOKEN.test(text)) {
    bad(variable, `${path} must hold one bearer token on one line (letters, digits and -._~+/ with optional trailing =)`);
    return undefined;
  }
  return text;
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.search === '' && url.hash === '' && url.username === '' && url.password === '';
  } catch {
    return false;
  }
}
