import type { Brand } from './brand.js';

/**
 * 処理通番: `YYYYMMDD` (Japan time) + 2-digit node id + 10-digit daily sequence, 20 digits.
 * Serials are gap-free per node and day (I2).
 */
export type SerialNumber = Brand<string, 'SerialNumber'>;

const SERIAL = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{10})$/;
const JST_OFFSET_MS = 9 * 60 * 60 * 1000;

export interface SerialParts {
  readonly day: string; // YYYYMMDD
  readonly nodeId: number;
  readonly sequence: number;
}

export function isSerialNumber(value: string): value is SerialNumber {
  const m = SERIAL.exec(value);
  if (!m) return false;
  const [, y, mo, d, , seq] = m;
  const month = Number(mo);
  const day = Number(d);
  return Number(y) >= 2000 && month >= 1 && month <= 12 && day >= 1 && day <= 31 && Number(seq) >= 1;
}

export function parseSerialNumber(value: string): SerialParts {
  if (!isSerialNumber(value)) throw new RangeError(`not a processing serial number: ${JSON.stringify(value)}`);
  return { day: value.slice(0, 8), nodeId: Number(value.slice(8, 10)), sequence: Number(value.slice(10)) };
}

export function formatSerialNumber(parts: SerialParts): SerialNumber {
  if (!Number.isInteger(parts.nodeId) || parts.nodeId < 0 || parts.nodeId > 99) {
    throw new RangeError(`node id must be 0..99, got ${parts.nodeId}`);
  }
  if (!Number.isInteger(parts.sequence) || parts.sequence < 1 || parts.sequence > 9_999_999_999) {
    throw new RangeError(`daily sequence must be 1..9999999999, got ${parts.sequence}`);
  }
  return `${parts.day}${String(parts.nodeId).padStart(2, '0')}${String(parts.sequence).padStart(10, '0')}` as SerialNumber;
}

/** The Japan-time calendar day (YYYYMMDD) of an instant. Japan has no daylight saving time. */
export function japanDay(at: Date): string {
  const jst = new Date(at.getTime() + JST_OFFSET_MS);
  const y = jst.getUTCFullYear();
  const m = jst.getUTCMonth() + 1;
  const d = jst.getUTCDate();
  return `${y}${m < 10 ? '0' : ''}${m}${d < 10 ? '0' : ''}${d}`;
}
