/** A non-negative integer from the environment (the baseline processes read nothing else). */
export function positiveEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 16 * 1024 * 1024) throw new Error(`${name} must be an integer from 0 to 16 MiB, got ${JSON.stringify(raw)}`);
  return n;
}

/**
 * A JSON answer of exactly `bytes` bytes (UTF-8) shaped like the hub's (`"outcome":"answered"`, a serial,
 * an opaque payload), so the load generator's check is the same for the baseline and the linkage.
 */
export function answerOfSize(bytes: number): string {
  const bare = JSON.stringify({ outcome: 'answered', serial: '20261205010000000001', answer: '' });
  if (bytes < bare.length) throw new Error(`an answer needs at least ${bare.length} bytes, got ${bytes}`);
  return JSON.stringify({ outcome: 'answered', serial: '20261205010000000001', answer: 'A'.repeat(bytes - bare.length) });
}
