import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 8192;
const pool = Buffer.allocUnsafe(POOL_BYTES);
/** Hex text of a pool of CSPRNG bytes; ids are cut from it, so one native call serves hundreds of ids. */
let hex = '';
let offset = 0;
const VARIANT = '89ab89ab89ab89ab';
let lastMs = -1;
let timePrefix = '';

/**
 * RFC 9562 UUIDv7: 48-bit Unix milliseconds, version 7, 12 random bits, variant 10, 62 random bits.
 * Time-ordered, so ids of one ledger sort roughly by append order.
 */
export function uuidv7(nowMs: number = Date.now()): string {
  if (nowMs !== lastMs) {
    if (!Number.isSafeInteger(nowMs) || nowMs < 0 || nowMs >= 2 ** 48) throw new RangeError(`uuidv7 needs a 48-bit millisecond time, got ${nowMs}`);
    lastMs = nowMs;
    const t = nowMs.toString(16).padStart(12, '0');
    timePrefix = `${t.slice(0, 8)}-${t.slice(8)}-7`;
  }
  // 19 hex digits a call: 3 (rand_a), 1 (2 bits of rand_b under the variant), 3 + 12 (rest of rand_b).
  if (offset + 19 > hex.length) {
    randomFillSync(pool);
    hex = pool.toString('hex');
    offset = 0;
  }
  const o = offset;
  offset += 19;
  const variant = VARIANT[parseInt(hex[o + 3]!, 16)]!;
  return `${timePrefix}${hex.slice(o, o + 3)}-${variant}${hex.slice(o + 4, o + 7)}-${hex.slice(o + 7, o + 19)}`;
}
