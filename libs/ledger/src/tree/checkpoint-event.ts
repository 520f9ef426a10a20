import { type Hash, type NoteSigner, signCheckpoint, toHex } from '#audit-log';
import type { AppendRequest } from '../event-store.port.js';
import type { EventMetadata } from '../envelope.js';

/** Type of the event that records a signed checkpoint in the log itself (I3). */
export const CHECKPOINT_SIGNED = 'CheckpointSigned';
/** The stream that holds every CheckpointSigned event, in signing order. */
export const CHECKPOINT_STREAM = '$checkpoints';

/** Data of a CheckpointSigned event. `note` is the whole signed note; the other fields repeat its body. */
export interface CheckpointSignedData {
  readonly origin: string;
  /** Tree size the checkpoint covers: positions [0, size). Always below the event's own position. */
  readonly size: number;
  readonly rootHex: string;
  readonly timeMs: number;
  readonly note: string;
}

/** `linkage-ledger.example/hub/<node id>`: the default origin (and signing key name) of a hub node. */
export function defaultCheckpointOrigin(nodeId: number): string {
  return `linkage-ledger.example/hub/${String(nodeId).padStart(2, '0')}`;
}

/** Signs (origin, size, root, time) and returns the event data. The key name MUST be the origin. */
export function signedCheckpointData(origin: string, size: number, root: Hash, timeMs: number, privateKey: NoteSigner['privateKey']): CheckpointSignedData {
  const note = signCheckpoint({ origin, size, root, timeMs }, { name: origin, privateKey });
  return { origin, size, rootHex: toHex(root), timeMs, note };
}

/**
 * The append of one checkpoint: its own serial, allocated and ended by this one event (I2), on the
 * `$checkpoints` stream. Callers MUST sign checkpoints one at a time (sizes and times strictly increase).
 */
export function checkpointAppendRequest(data: CheckpointSignedData, metadata: EventMetadata): AppendRequest {
  return {
    streamId: CHECKPOINT_STREAM,
    expectedRevision: 'any',
    serial: { allocate: true },
    events: [{ type: CHECKPOINT_SIGNED, data, terminal: 'completed' }],
    metadata,
  };
}

/** Cheap test on a stored canonical envelope: `type` is its last key (RFC 8785 sorts keys). */
export function isCheckpointEnvelope(envelope: string): boolean {
  return envelope.endsWith(`"type":"${CHECKPOINT_SIGNED}"}`);
}
