import { type Checkpoint, parseCheckpoint, verifyCheckpoint } from './checkpoint.js';
import { AuditLogError } from './errors.js';
import { toHex } from './merkle.js';
import { type VerifierKey, formatVerifierKey, noteParts, parseVerifierKey, verifyNote } from './note.js';

/** Type of the event that announces a new checkpoint signing key in the log itself. */
export const CHECKPOINT_KEY_ROTATED = 'CheckpointKeyRotated';

/** Data of a CheckpointKeyRotated event: all public (I10). */
export interface CheckpointKeyRotatedData {
  readonly origin: string;
  /** The new key, as a C2SP signed-note verifier key `<origin>+<key id>+<base64>`. */
  readonly verifierKey: string;
  /** The new key's id, 8 hex digits. */
  readonly keyId: string;
  /** The id of the key it replaces: the key that signs every checkpoint up to this event. */
  readonly previousKeyId: string;
  readonly rotatedAt: string;
}

/** One key of the chain, as the hub serves it (GET /v1/audit/verifier-keys). */
export interface ChainKey {
  readonly verifierKey: string;
  readonly keyId: string;
  /** The smallest tree size whose checkpoint this key signs: 0 for the first key, the announcement's position + 1 after. */
  readonly fromSize: number;
  /** Position of the CheckpointKeyRotated event that announced it; absent for the first key. */
  readonly announcedAt?: number;
  /** The id of the key that announced it (the previous key); absent for the first key. */
  readonly announcedBy?: string;
  /** The first checkpoint this key signs, signed by the previous key too: the hand-over. Absent until signed. */
  readonly handoverSize?: number;
  readonly handoverNote?: string;
}

interface Link {
  readonly key: VerifierKey;
  readonly text: string;
  readonly id: string;
  readonly fromSize: number;
  readonly announcedAt?: number;
  readonly announcedBy?: string;
  handoverSize?: number;
  handoverNote?: string;
}

/**
 * The checkpoint signing keys of one log, as a chain that starts at the key a reader pinned: each later
 * key is announced in the log by a CheckpointKeyRotated event naming the key before it, and the first
 * checkpoint that covers the announcement is signed by both (the old key vouches for the new one). Every
 * tree size has exactly one key: the last whose `fromSize` is at most the size. A checkpoint signed by
 * no key of the chain, or by a key outside its sizes, is refused; so is a hand-over without both
 * signatures.
 */
export class CheckpointKeyChain {
  private readonly links: Link[];
  readonly origin: string;

  constructor(first: string, origin?: string) {
    const key = parseVerifierKey(first.trim());
    this.origin = origin ?? key.name;
    this.links = [{ key, text: formatVerifierKey(key), id: toHex(key.keyId), fromSize: 0 }];
  }

  /**
   * A chain as a hub serves it, checked from the pinned first key: the first key MUST be the pinned one,
   * each next one announced by the key before it, and each hand-over note signed by both.
   */
  static fromServed(pinned: string, served: readonly ChainKey[], origin?: string): CheckpointKeyChain {
    const chain = new CheckpointKeyChain(pinned, origin);
    const [first, ...rest] = served;
    if (first === undefined || first.verifierKey.trim() !== chain.links[0]!.text) {
      throw chainError(`the served key set does not start at the pinned key ${chain.links[0]!.text}`);
    }
    for (const k of rest) {
      if (k.announcedAt === undefined || k.announcedBy === undefined) throw chainError(`key ${k.keyId} carries no announcement`);
      const problem = chain.announce({ verifierKey: k.verifierKey, previousKeyId: k.announcedBy }, k.announcedAt);
      if (problem !== undefined) throw chainError(problem);
      if (k.handoverNote !== undefined) chain.verify(k.handoverNote);
    }
    return chain;
  }

  get keys(): readonly ChainKey[] {
    return this.links.map((l) => ({
      verifierKey: l.text,
      keyId: l.id,
      fromSize: l.fromSize,
      ...(l.announcedAt === undefined ? {} : { announcedAt: l.announcedAt, announcedBy: l.announcedBy }),
      ...(l.handoverSize === undefined ? {} : { handoverSize: l.handoverSize, handoverNote: l.handoverNote }),
    }));
  }

  /** The newest key. */
  get current(): ChainKey {
    return this.keys.at(-1)!;
  }

  /**
   * Takes in a CheckpointKeyRotated event at `position`. Returns why it does not extend the chain (the
   * chain is then unchanged), or undefined.
   */
  announce(data: Pick<CheckpointKeyRotatedData, 'verifierKey' | 'previousKeyId'>, position: number): string | undefined {
    let key: VerifierKey;
    try {
      key = parseVerifierKey(String(data.verifierKey).trim());
    } catch (error) {
      return `the announced verifier key is not valid: ${(error as Error).message}`;
    }
    const last = this.links.at(-1)!;
    const id = toHex(key.keyId);
    if (key.name !== last.key.name) return `the announced key is named ${JSON.stringify(key.name)}, the chain's keys ${JSON.stringify(last.key.name)}`;
    if (data.previousKeyId !== last.id) return `the announcement names ${String(data.previousKeyId)} as the previous key; the chain's newest key is ${last.id}`;
    if (this.links.some((l) => l.id === id)) return `key ${id} is already in the chain`;
    if (last.announcedAt !== undefined && last.handoverSize === undefined) return `key ${last.id} was announced but no checkpoint handed over to it yet`;
    if (!Number.isSafeInteger(position) || position < last.fromSize) return `the announcement at ${position} is before key ${last.id} took over (size ${last.fromSize})`;
    this.links.push({ key, text: formatVerifierKey(key), id, fromSize: position + 1, announcedAt: position, announcedBy: last.id });
    return undefined;
  }

  /** The key that signs the checkpoint of this size. */
  keyFor(size: number): ChainKey {
    const i = this.indexFor(size);
    return this.keys[i]!;
  }

  /**
   * Verifies a checkpoint note with the chain: signed by the key for its size; the first checkpoint of a
   * rotated key also by the key before it (recorded as the hand-over). Returns the checkpoint.
   */
  verify(note: string): Checkpoint {
    let size: number;
    try {
      size = parseCheckpoint(noteParts(note).text).size;
    } catch (error) {
      // An altered body: answer as a single-key verifier would, signature first.
      for (const l of this.links) {
        try {
          verifyNote(note, l.key);
        } catch (e) {
          if ((e as AuditLogError).code === 'NOTE_NOT_SIGNED') continue;
          throw e;
        }
        break;
      }
      throw error;
    }
    const i = this.indexFor(size);
    const link = this.links[i]!;
    let checkpoint: Checkpoint;
    try {
      checkpoint = verifyCheckpoint(note, link.key, this.origin);
    } catch (error) {
      if ((error as AuditLogError).code !== 'NOTE_NOT_SIGNED') throw error;
      const signers = noteParts(note).signers.map((s) => `${s.name}+${s.keyIdHex}`);
      const known = signers.filter((s) => this.links.some((l) => `${l.key.name}+${l.id}` === s));
      throw new AuditLogError(
        'CHECKPOINT_KEY_UNANNOUNCED',
        known.length > 0
          ? `the checkpoint of size ${size} is signed by ${known.join(', ')}, not by ${link.key.name}+${link.id}, the key the log announced for that size`
          : `the checkpoint of size ${size} is signed by ${signers.join(', ') || 'no key'}: no key announced in the log (the chain from ${this.links[0]!.id} gives ${link.id} for that size)`,
      );
    }
    if (i > 0 && (link.handoverSize === undefined || link.handoverSize === size)) {
      const previous = this.links[i - 1]!;
      try {
        verifyNote(note, previous.key);
      } catch (error) {
        throw new AuditLogError(
          'CHECKPOINT_HANDOVER_UNSIGNED',
          `the first checkpoint of key ${link.id} (size ${size}) is not signed by the key that announced it, ${previous.id}: ${(error as Error).message}`,
        );
      }
      link.handoverSize = size;
      link.handoverNote = note;
    } else if (i > 0 && link.handoverSize !== undefined && size < link.handoverSize) {
      // Sizes strictly increase in a log: a checkpoint of the new key before its hand-over was not vouched for.
      throw new AuditLogError('CHECKPOINT_HANDOVER_UNSIGNED', `the checkpoint of size ${size} is signed by key ${link.id} before its hand-over at size ${link.handoverSize}`);
    }
    return checkpoint;
  }

  private indexFor(size: number): number {
    let i = 0;
    while (i + 1 < this.links.length && this.links[i + 1]!.fromSize <= size) i++;
    return i;
  }
}

function chainError(message: string): AuditLogError {
  return new AuditLogError('KEY_CHAIN_INVALID', message);
}
