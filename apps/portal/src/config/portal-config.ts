import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOG_LEVEL_NAMES, type LogLevelName } from '#logging';

export interface PortalConfig {
  readonly host: string;
  readonly port: number;
  /** The hub's HTTP base URL, without a trailing slash. */
  readonly hubUrl: string;
  /** The origin citizens' browsers use (scheme://host[:port]): the only Origin state-changing calls may carry. */
  readonly origin: string;
  /** Cookies are Secure unless the origin is http://localhost (or 127.0.0.1). */
  readonly secureCookies: boolean;
  readonly dataDir: string;
  /** The built frontend (index.html and assets). */
  readonly webRoot: string;
  readonly logLevel: LogLevelName;
  /**
   * Proxies in front of the portal (addresses or CIDR ranges) whose X-Forwarded-For names the citizen's
   * address; empty: the socket's peer is the citizen. The portal passes that address on to the hub, which
   * counts unidentified refusals per source when it trusts the portal (HUB_TRUSTED_PROXIES).
   */
  readonly trustedProxies: readonly string[];
}

export class PortalConfigError extends Error {}

/** The repository root, from apps/portal/src (sources) or dist/apps/portal/src (built). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
  return dir;
}

export const PORTAL_ROOT = repoRoot();

/** Reads and validates the portal's environment once, at boot. */
export function loadPortalConfig(env: Readonly<Record<string, string | undefined>>): PortalConfig {
  const problems: string[] = [];
  const port = Number(env['PORTAL_PORT'] ?? '3300');
  if (!Number.isInteger(port) || port < 0 || port > 65535) problems.push(`PORTAL_PORT must be 0..65535, got ${JSON.stringify(env['PORTAL_PORT'])}`);
  const hubUrl = (env['PORTAL_HUB_URL'] ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  if (!/^https?:\/\/[^/?#]+$/.test(hubUrl)) problems.push(`PORTAL_HUB_URL must be an http(s) base URL without a path, got ${JSON.stringify(hubUrl)}`);
  const originText = env['PORTAL_ORIGIN'] ?? `http://localhost:${port || 3300}`;
  let origin = '';
  let secureCookies = true;
  try {
    const u = new URL(originText);
    origin = u.origin;
    if (origin !== originText.replace(/\/$/, '') || (u.protocol !== 'http:' && u.protocol !== 'https:')) throw new Error('not an origin');
    const local = u.protocol === 'http:' && (u.hostname === 'localhost' || u.hostname === '127.0.0.1' || u.hostname === '[::1]');
    if (u.protocol === 'http:' && !local) problems.push(`PORTAL_ORIGIN must be https:// unless it is http://localhost, got ${JSON.stringify(originText)}`);
    secureCookies = !local;
  } catch {
    problems.push(`PORTAL_ORIGIN must be an origin such as https://portal.example.jp or http://localhost:3300, got ${JSON.stringify(originText)}`);
  }
  const trustedProxies = (env['PORTAL_TRUSTED_PROXIES'] ?? '').split(',').map((p) => p.trim()).filter((p) => p !== '');
  for (const p of trustedProxies) {
    const [address, prefix, ...rest] = p.split('/');
    const family = isIP(address ?? '');
    if (rest.length > 0 || family === 0 || (prefix !== undefined && !(/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128)))) {
      problems.push(`PORTAL_TRUSTED_PROXIES must be comma-separated IP addresses or CIDR ranges, got ${JSON.stringify(p)}`);
    }
  }
  const logLevel = (env['PORTAL_LOG_LEVEL'] ?? 'log') as PortalConfig['logLevel'];
  if (!(LOG_LEVEL_NAMES as readonly string[]).includes(logLevel)) problems.push(`PORTAL_LOG_LEVEL must be one of ${LOG_LEVEL_NAMES.join(', ')}`);
  if (problems.length > 0) throw new PortalConfigError(problems.join('\n'));
  return {
    host: env['PORTAL_HOST'] ?? '127.0.0.1',
    port,
    hubUrl,
    origin,
    secureCookies,
    dataDir: resolve(env['PORTAL_DATA_DIR'] ?? './data/portal'),
    webRoot: resolve(env['PORTAL_WEB_ROOT'] ?? join(PORTAL_ROOT, 'dist/apps/portal/web')),
    logLevel,
    trustedProxies,
  };
}
