import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Reads a JSON secret file, creating it with `create()` at first start. The file is created exclusively
 * ('wx': two processes starting at once MUST NOT overwrite each other's secret) with mode 0600 in a 0700
 * directory, and put back to 0600 if someone widened it. Secrets MUST NOT be committed or logged.
 */
export function loadOrCreateSecretFile(path: string, create: () => Record<string, unknown>): Record<string, unknown> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    try {
      writeFileSync(path, `${JSON.stringify(create(), null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    text = readFileSync(path, 'utf8');
  }
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`secret file ${path} does not hold a JSON object`);
  return parsed as Record<string, unknown>;
}
