// The checkpoint signing keys of the log as a chain from the key this browser pinned, rebuilt here in
// WebCrypto from what the hub serves (GET /v1/audit/verifier-keys): the same rules as libs/audit-log's
// CheckpointKeyChain.fromServed. The first served key must be the pinned one; each next key must name the
// key before it; each hand-over checkpoint must be signed by both. Every tree size then has one key.
import { concatBytes, fromBase64, toBase64, toHex } from './bytes.js';
import { NoteError, parseCheckpoint, parseVerifierKey, verifyNote, type Checkpoint, type VerifierKey } from './note.js';

/** One key as the hub serves it. */
export interface ServedKey {
  readonly verifierKey: string;
  readonly keyId: string;
  readonly fromSize: number;
  readonly announcedAt?: number;
  readonly announcedBy?: string;
  readonly handoverSize?: number;
  readonly handoverNote?: string;
}

/** Why a served key set or a checkpoint does not pass the chain; `message` names the key and the size. */
export class KeyChainError extends Error {
  constructor(
    readonly code: 'KEY_CHAIN_INVALID' | 'CHECKPOINT_HANDOVER_UNSIGNED' | 'CHECKPOINT_KEY_UNANNOUNCED',
    message: string,
  ) {
    super(message);
  }
}

export interface ChainLink {
  readonly key: VerifierKey;
  readonly text: string;
  readonly id: string;
  /** The smallest tree size this key signs. */
  readonly fromSize: number;
  readonly announcedAt?: number;
  /** The size of the checkpoint that handed over to this key (signed by it and the key before), once seen. */
  handoverSize?: number;
}

function textOf(key: VerifierKey): string {
  return `${key.name}+${toHex(key.keyId)}+${toBase64(concatBytes(Uint8Array.of(0x01), key.publicKey))}`;
}

/** The size a note's body claims (before its signature is checked: it only chooses the key to check with). */
function claimedSize(note: string): number {
  const split = typeof note === 'string' ? note.lastIndexOf('\n\n') : -1;
  if (split < 0) throw new NoteError('NOTE_MALFORMED', 'the note has no blank line before its signatures');
  return parseCheckpoint(note.slice(0, split + 1)).size;
}

/** Whether a signature line of the note names this key (by name and key id; not checked here). */
function signedBy(note: string, link: ChainLink): boolean {
  const prefix = `\u2014 ${link.key.name} `;
  return note.split('\n').some((line) => {
    if (!line.startsWith(prefix)) return false;
    const bytes = fromBase64(line.slice(prefix.length));
    return bytes !== undefined && bytes.length > 4 && toHex(bytes.subarray(0, 4)) === link.id;
  });
}

export class KeyChain {
  readonly links: ChainLink[];
  readonly origin: string;

  private constructor(first: VerifierKey, origin: string) {
    this.origin = origin;
    this.links = [{ key: first, text: textOf(first), id: toHex(first.keyId), fromSize: 0 }];
  }

  /** The chain of one pinned key (a log that never rotated). */
  static async single(pinned: string, origin?: string): Promise<KeyChain> {
    const key = await parseVerifierKey(pinned);
    return new KeyChain(key, origin ?? key.name);
  }

  /**
   * The served key set checked from the pinned key. Throws KeyChainError (KEY_CHAIN_INVALID, or
   * CHECKPOINT_HANDOVER_UNSIGNED / CHECKPOINT_KEY_UNANNOUNCED for a hand-over note) or NoteError.
   */
  static async fromServed(pinned: string, served: readonly ServedKey[], origin?: string): Promise<KeyChain> {
    const chain = await KeyChain.single(pinned, origin);
    if (!Array.isArray(served)) throw new KeyChainError('KEY_CHAIN_INVALID', 'the served key set holds no list of keys');
    const [first, ...rest] = served;
    const root = chain.links[0]!;
    if (typeof first?.verifierKey !== 'string' || first.verifierKey.trim() !== root.text) {
      throw new KeyChainError('KEY_CHAIN_INVALID', `the served key set does not start at the pinned key ${root.text} (it starts at ${String(first?.verifierKey)})`);
    }
    for (const k of rest) {
      if (typeof k !== 'object' || k === null) throw new KeyChainError('KEY_CHAIN_INVALID', `the served key set holds ${JSON.stringify(k)} where a key belongs`);
      if (k.announcedAt === undefined || k.announcedBy === undefined) throw new KeyChainError('KEY_CHAIN_INVALID', `key ${String(k.keyId)} carries no announcement`);
      await chain.announce(k.verifierKey, k.announcedBy, k.announcedAt);
      if (k.handoverNote === undefined) continue;
      const { checkpoint } = await chain.verify(k.handoverNote);
      if (checkpoint.origin !== chain.origin) throw new KeyChainError('KEY_CHAIN_INVALID', `the hand-over note of key ${String(k.keyId)} is of log ${JSON.stringify(checkpoint.origin)}, not ${JSON.stringify(chain.origin)}`);
    }
    return chain;
  }

  private async announce(verifierKey: string, previousKeyId: string, position: number): Promise<void> {
    let key: VerifierKey;
    try {
      key = await parseVerifierKey(String(verifierKey));
    } catch (error) {
      throw new KeyChainError('KEY_CHAIN_INVALID', `the announced verifier key is not valid: ${(error as Error).message}`);
    }
    const last = this.links.at(-1)!;
    const id = toHex(key.keyId);
    const fail = (why: string) => new KeyChainError('KEY_CHAIN_INVALID', why);
    if (key.name !== last.key.name) throw fail(`the announced key is named ${JSON.stringify(key.name)}, the chain's keys ${JSON.stringify(last.key.name)}`);
    if (previousKeyId !== last.id) throw fail(`key ${id} names ${String(previousKeyId)} as the previous key; the chain's newest key is ${last.id}`);
    if (this.links.some((l) => l.id === id)) throw fail(`key ${id} is already in the chain`);
    if (last.announcedAt !== undefined && last.handoverSize === undefined) throw fail(`key ${last.id} was announced but no checkpoint handed over to it yet`);
    if (!Number.isSafeInteger(position) || position < last.fromSize) throw fail(`the announcement at ${String(position)} is before key ${last.id} took over (size ${last.fromSize})`);
    this.links.push({ key, text: textOf(key), id, fromSize: position + 1, announcedAt: position });
  }

  /** The key that signs the checkpoint of this size. */
  keyFor(size: number): ChainLink {
    return this.links[this.indexFor(size)]!;
  }

  /** The key ids, pinned first. */
  get ids(): readonly string[] {
    return this.links.map((l) => l.id);
  }

  /**
   * Verifies a checkpoint note with the key for its size (the first checkpoint of a rotated key also with
   * the key before it) and returns its text and checkpoint. Throws NoteError or KeyChainError.
   */
  async verify(note: string): Promise<{ readonly text: string; readonly checkpoint: Checkpoint; readonly link: ChainLink }> {
    let size: number;
    try {
      size = claimedSize(note);
    } catch (error) {
      // An altered body: answer as a single-key verifier would, signature first.
      for (const l of this.links) {
        try {
          await verifyNote(note, l.key);
        } catch (e) {
          if (e instanceof NoteError && e.code === 'NOTE_NOT_SIGNED') continue;
          throw e;
        }
        break;
      }
      throw error;
    }
    const i = this.indexFor(size);
    const link = this.links[i]!;
    let text: string;
    try {
      text = await verifyNote(note, link.key);
    } catch (error) {
      if (!(error instanceof NoteError) || error.code !== 'NOTE_NOT_SIGNED' || this.links.length === 1) throw error;
      const others = this.links.filter((l) => l !== link && signedBy(note, l)).map((l) => `${l.key.name}+${l.id}`);
      throw new KeyChainError(
        'CHECKPOINT_KEY_UNANNOUNCED',
        others.length > 0
          ? `the checkpoint of size ${size} is signed by ${others.join(', ')}, not by ${link.key.name}+${link.id}, the key the log announced for that size`
          : `the checkpoint of size ${size} is signed by no key of the chain: the chain from ${this.links[0]!.id} gives ${link.key.name}+${link.id} for that size`,
      );
    }
    const checkpoint = parseCheckpoint(text);
    if (i > 0 && (link.handoverSize === undefined || link.handoverSize === size)) {
      const previous = this.links[i - 1]!;
      try {
        await verifyNote(note, previous.key);
      } catch (error) {
        throw new KeyChainError('CHECKPOINT_HANDOVER_UNSIGNED', `the first checkpoint of key ${link.id} (size ${size}) is not signed by the key that announced it, ${previous.id}: ${(error as Error).message}`);
      }
      link.handoverSize = size;
    } else if (i > 0 && link.handoverSize !== undefined && size < link.handoverSize) {
      throw new KeyChainError('CHECKPOINT_HANDOVER_UNSIGNED', `the checkpoint of size ${size} is signed by key ${link.id} before its hand-over at size ${link.handoverSize}`);
    }
    return { text, checkpoint, link };
  }

  private indexFor(size: number): number {
    let i = 0;
    while (i + 1 < this.links.length && this.links[i + 1]!.fromSize <= size) i++;
    return i;
  }
}
