import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The portal's own key (32 random bytes, generated at first start in its data dir, mode 0600): it makes
 * the CSRF tokens (an HMAC of the session token). It holds no power over citizens: the hub verifies every
 * passkey ceremony and every session itself.
 */
export function loadPortalKey(dataDir: string): Buffer {
  const path = join(dataDir, 'portal.key.json');
  if (existsSync(path)) {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as { csrfKey?: unknown };
    const key = typeof parsed.csrfKey === 'string' ? Buffer.from(parsed.csrfKey, 'base64url') : Buffer.alloc(0);
    if (key.length !== 32) throw new Error(`${path} holds no 32-byte csrfKey`);
    return key;
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ csrfKey: key.toString('base64url'), createdAt: new Date().toISOString() })}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
  return key;
}
