import { Inject, Injectable } from '@nestjs/common';
import type { AppendResult, EventStore } from '#ledger';
import { CODE_KEY_BYTES, CodeLocator, MAX_CODE_GENERATION, codeKeyId, newCodeKey, type CodeKey } from '#mapper';
import { HubConfig } from '../config/hub-config.js';
import { HubProblem } from '../http/hub-problem.js';
import type { Leadership } from '../leadership/leadership.js';
import { LEADERSHIP } from '../leadership/tokens.js';
import { CLOCK, EVENT_STORE, type Clock } from '../ledger/tokens.js';
import { RotatedKeyRing, readRotatedKeyFile, storeRotatedKeyFile } from './rotated-key-ring.js';

/** The stream of CodeKeyRotated events, in rotation order. */
export const CODE_KEY_STREAM = '$code-keys';
export const CODE_KEY_ROTATED = 'CodeKeyRotated';

/** A rotated key: `agency-code.<16 hex key id>.key.json`, beside the first key's file (agency-code.key.json). */
const ROTATED_KEY_PREFIX = 'agency-code';

/** Data of CodeKeyRotated (schemas/events/code-key-rotated.v1.json): public, the key never. */
export interface CodeKeyRotatedData {
  readonly keyId: string;
  readonly previousKeyId: string;
  /** The new key's generation: the mark inside every code it mints (code-locator.ts). */
  readonly generation: number;
  readonly rotatedAt: string;
}

/** The answer to a rotation. */
export interface CodeKeyRotation extends CodeKeyRotatedData {
  /** Position of the CodeKeyRotated event. */
  readonly position: number;
  readonly serial: string;
}

function codeKeyOf(path: string, file: Record<string, unknown>): CodeKey {
  const key = typeof file['key'] === 'string' ? Buffer.from(file['key'], 'base64url') : Buffer.alloc(0);
  const generation = file['generation'];
  if (file['purpose'] !== 'agency-code-locator' || key.length !== CODE_KEY_BYTES || typeof generation !== 'number' || !Number.isInteger(generation) || generation < 1 || generation > MAX_CODE_GENERATION) {
    throw new Error(`key file ${path} is not a valid rotated code key (needs purpose "agency-code-locator", a ${CODE_KEY_BYTES}-byte base64url key and a generation from 1 to ${MAX_CODE_GENERATION})`);
  }
  return { generation, key };
}

/**
 * Generates the code key of this generation and stores it (mode 0600, created exclusively) under its key
 * id, BEFORE it is announced: a key the log announces always has its file here. A key stored but never
 * announced (a crash, or a refused append in between) never mints.
 */
export function createRotatedCodeKey(keysDir: string, generation: number, now: Date): CodeKey & { readonly keyId: string } {
  const { path, file } = storeRotatedKeyFile(keysDir, ROTATED_KEY_PREFIX, () => {
    const key = newCodeKey();
    return { keyId: codeKeyId(key), file: { purpose: 'agency-code-locator', alg: 'AES-128', key: key.toString('base64url'), generation, createdAt: now.toISOString() } };
  });
  const key = codeKeyOf(path, file);
  return { ...key, keyId: codeKeyId(key.key) };
}

/** A rotated code key, by its id, if this hub holds its file. */
export function loadRotatedCodeKey(keysDir: string, keyId: string): CodeKey | undefined {
  const held = readRotatedKeyFile(keysDir, ROTATED_KEY_PREFIX, keyId);
  if (held === undefined) return undefined;
  const key = codeKeyOf(held.path, held.file);
  if (codeKeyId(key.key) !== keyId) throw new Error(`key file ${held.path} holds code key ${codeKeyId(key.key)}, not ${keyId}`);
  return key;
}

/**
 * The code key's rotation (docs/key-rotation.md). The hub's CodeLocator is a ring of code keys: the first
 * (keys/agency-code.key.json) and each one the log announces (stream `$code-keys`), read at start and
 * when this hub takes over as leader. The newest mints; every one still opens the codes it minted, and a
 * code names its key's generation inside its sealed block, so old and new codes alike translate with one
 * Redis read (libs/mapper/src/code-locator.ts).
 */
@Injectable()
export class CodeKeyRing extends RotatedKeyRing<CodeKeyRotatedData, CodeKey & { readonly keyId: string }, CodeKeyRotation> {
  constructor(
    config: HubConfig,
    @Inject(EVENT_STORE) store: EventStore,
    @Inject(CLOCK) clock: Clock,
    @Inject(LEADERSHIP) leadership: Leadership | null,
    private readonly locator: CodeLocator,
  ) {
    super({ stream: CODE_KEY_STREAM, type: CODE_KEY_ROTATED, what: 'code key', logger: 'CodeKeys' }, config, store, clock, leadership);
  }

  /**
   * Adds every announced key to the ring, in order. A key whose file this hub lacks (hubs on one log MUST
   * share the keys dir) is left out and said: its codes are then found only through code bucket records
   * the long way, and a Redis keyspace written by a hub that held it does not have those.
   */
  async load(): Promise<void> {
    const missing: string[] = [];
    for (const e of await this.announced()) {
      const data = e.data as CodeKeyRotatedData;
      if (this.locator.keys.some((k) => k.keyId === data.keyId)) continue;
      const key = loadRotatedCodeKey(this.config.keysDir, data.keyId);
      if (key === undefined || key.generation !== data.generation) {
        missing.push(data.keyId);
        continue;
      }
      if (key.generation > this.locator.generation) this.locator.add(key);
    }
    this.setProblem(
      missing.length === 0 ? undefined : `the log announces code key(s) ${missing.join(', ')}, whose file is not in ${this.config.keysDir}`,
      'codes minted under them are found the long way, or not at all in a Redis keyspace another hub wrote',
    );
  }

  /**
   * The rotation (operator command, `rotate`): a new AES-128 key of the next generation is stored in the
   * keys dir (0600, exclusively), announced by a CodeKeyRotated event (its own serial), and mints every
   * code from then on. Codes minted before keep translating (their key stays in the ring). On KurrentDB
   * only the leader rotates.
   */
  protected make(last: CodeKeyRotatedData | undefined): { key: CodeKey & { readonly keyId: string }; data: CodeKeyRotatedData } {
    const generation = Math.max(last?.generation ?? 0, this.locator.generation) + 1;
    if (generation > MAX_CODE_GENERATION) throw new HubProblem('SERVICE_UNAVAILABLE', `the code key was rotated ${MAX_CODE_GENERATION} times, the most a code can name; nothing was recorded`);
    const previousKeyId = last?.keyId ?? this.locator.fingerprint;
    const now = this.clock();
    const key = createRotatedCodeKey(this.config.keysDir, generation, now);
    return { key, data: { keyId: key.keyId, previousKeyId, generation, rotatedAt: now.toISOString() } };
  }

  /** It mints from now on. */
  protected adopt(key: CodeKey & { readonly keyId: string }): void {
    this.locator.add(key);
  }

  protected answer(data: CodeKeyRotatedData, result: AppendResult): CodeKeyRotation {
    return { ...data, position: result.firstPosition, serial: result.serial };
  }

  protected override describe(data: CodeKeyRotatedData): string {
    return `generation ${data.generation}, `;
  }
}
