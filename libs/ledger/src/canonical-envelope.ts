import { canonicalize } from './canonical-json.js';
import type { EventMetadata, IdempotencyStamp, RecordedEvent } from './envelope.js';

/**
 * RFC 8785 text of an envelope. The envelope's own fields have fixed names and simple values, so they
 * are written in their canonical (sorted) order directly; `data` and `metadata`, which can be any JSON,
 * go through the RFC 8785 library. The result MUST equal `canonicalize(event)` (a property test pins it).
 * `canonicalData` and `canonicalMetadata` let a caller reuse texts it already has.
 */
export function canonicalEnvelope(event: RecordedEvent, canonicalData?: string, canonicalMetadata?: string): string {
  const data = canonicalData ?? canonicalize(event.data);
  const metadata = canonicalMetadata ?? canonicalMetadataText(event.metadata);
  if (data === undefined || metadata === undefined) throw new TypeError('event data and metadata must be JSON values');
  let text = '{';
  if (event.claims !== undefined) {
    text += '"claims":[';
    for (let i = 0; i < event.claims.length; i++) text += (i > 0 ? ',' : '') + JSON.stringify(event.claims[i]);
    text += '],';
  }
  text +=
    `"data":${data},"eventId":${JSON.stringify(event.eventId)},"metadata":${metadata},` +
    `"position":${integer(event.position)},"recordedAt":${JSON.stringify(event.recordedAt)},` +
    `"schemaVersion":${integer(event.schemaVersion)},"serial":${JSON.stringify(event.serial)},` +
    `"streamId":${JSON.stringify(event.streamId)},"streamRevision":${integer(event.streamRevision)},`;
  if (event.terminal !== undefined) text += `"terminal":${JSON.stringify(event.terminal)},`;
  return `${text}"type":${JSON.stringify(event.type)}}`;
}

function integer(n: number): string {
  if (!Number.isSafeInteger(n)) throw new TypeError(`envelope integers must be safe integers, got ${n}`);
  return String(n);
}

const METADATA_KEYS = new Set(['actor', 'causationId', 'correlationId']);
const STAMP_KEYS = new Set(['events', 'key', 'requestDigest']);

/**
 * RFC 8785 text of the metadata record, written field by field in canonical order (it has a fixed
 * shape); anything outside that shape goes through the library instead. MUST equal `canonicalize(m)`.
 */
export function canonicalMetadataText(m: EventMetadata): string {
  if (!hasFixedShape(m)) {
    const text = canonicalize(m);
    if (text === undefined) throw new TypeError('event metadata must be a JSON value');
    return text;
  }
  let text = `{"actor":${JSON.stringify(m.actor)}`;
  if (m.causationId !== undefined) text += `,"causationId":${JSON.stringify(m.causationId)}`;
  text += `,"correlationId":${JSON.stringify(m.correlationId)}`;
  const s = m.idempotency;
  return s === undefined ? `${text}}` : `${text},${stampText(s)}}`;
}

/**
 * RFC 8785 text of `{ ...m, idempotency: stamp }`, given `plain`, the text of `m` (which has no stamp).
 * In the fixed shape `idempotency` sorts last, so the stamp is spliced in before the closing brace.
 */
export function stampedMetadataText(m: EventMetadata, plain: string, stamp: IdempotencyStamp): string {
  if (m.idempotency !== undefined || !hasFixedShape(m) || !isStamp(stamp)) return canonicalMetadataText({ ...m, idempotency: stamp });
  return `${plain.slice(0, -1)},${stampText(stamp)}}`;
}

function stampText(s: IdempotencyStamp): string {
  return `"idempotency":{"events":${integer(s.events)},"key":${JSON.stringify(s.key)},"requestDigest":${JSON.stringify(s.requestDigest)}}`;
}

/** A plain record with only the known metadata fields, each a string, and a stamp of the fixed shape. */
function hasFixedShape(m: object): boolean {
  if (Object.getPrototypeOf(m) !== Object.prototype) return false;
  const record = m as Record<string, unknown>;
  if (typeof record['actor'] !== 'string' || typeof record['correlationId'] !== 'string') return false;
  for (const key in m) {
    const value = (m as Record<string, unknown>)[key];
    if (value === undefined) continue;
    if (key === 'idempotency') {
      if (!isStamp(value)) return false;
    } else if (!METADATA_KEYS.has(key) || typeof value !== 'string') return false;
  }
  return true;
}

function isStamp(s: unknown): s is IdempotencyStamp {
  if (typeof s !== 'object' || s === null || Object.getPrototypeOf(s) !== Object.prototype) return false;
  const stamp = s as Record<string, unknown>;
  if (!Number.isSafeInteger(stamp['events']) || typeof stamp['key'] !== 'string' || typeof stamp['requestDigest'] !== 'string') return false;
  for (const key in stamp) if (!STAMP_KEYS.has(key)) return false;
  return true;
}
