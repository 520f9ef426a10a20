import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { EventStore, RecordedEvent } from '#ledger';
import { CODE_KEY_BYTES, CodeLocator, MAX_CODE_GENERATION, codeKeyId, newCodeKey, type CodeKey } from '#mapper';
import { HubConfig } from '../config/hub-config.js';
import { HubProblem } from '../http/hub-problem.js';
import type { Leadership } from '../leadership/leadership.js';
import { LEADERSHIP } from '../leadership/tokens.js';
import { CLOCK, EVENT_STORE, type Clock } from '../ledger/tokens.js';
import { loadOrCreateSecretFile } from './key-file.js';
import { readAnnouncements } from './announcements.js';

/** The stream of CodeKeyRotated events, in rotation order. */
export const CODE_KEY_STREAM = '$code-keys';
export const CODE_KEY_ROTATED = 'CodeKeyRotated';

/** A rotated key: `agency-code.<16 hex key id>.key.json`, beside the first key's file (agency-code.key.json). */
const ROTATED_KEY_FILE = /^agency-code\.([0-9a-f]{16})\.key\.json$/;

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
  for (;;) {
    const key = newCodeKey();
    const keyId = codeKeyId(key);
    const path = join(keysDir, `agency-code.${keyId}.key.json`);
    let created = false;
    const file = loadOrCreateSecretFile(path, () => {
      created = true;
      return { purpose: 'agency-code-locator', alg: 'AES-128', key: key.toString('base64url'), generation, createdAt: now.toISOString() };
    });
    if (created) return { ...codeKeyOf(path, file), keyId };
  }
}

/** A rotated code key, by its id, if this hub holds its file. */
export function loadRotatedCodeKey(keysDir: string, keyId: string): CodeKey | undefined {
  const name = `agency-code.${keyId}.key.json`;
  if (!ROTATED_KEY_FILE.test(name) || !readdirSync(keysDir).includes(name)) return undefined;
  const path = join(keysDir, name);
  const key = codeKeyOf(path, loadOrCreateSecretFile(path, () => ({})));
  if (codeKeyId(key.key) !== keyId) throw new Error(`key file ${path} holds code key ${codeKeyId(key.key)}, not ${keyId}`);
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
export class CodeKeyRing implements OnApplicationBootstrap {
  private readonly logger = new Logger('CodeKeys');
  #rotating: Promise<unknown> = Promise.resolve();
  #problem: string | undefined;

  constructor(
    private readonly config: HubConfig,
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(LEADERSHIP) private readonly leadership: Leadership | null,
    private readonly locator: CodeLocator,
  ) {
    leadership?.onTakeover(() => this.load());
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.load();
  }

  /** Why this hub's ring lacks a key the log announces, if it does. */
  get problem(): string | undefined {
    return this.#problem;
  }

  async announced(): Promise<readonly RecordedEvent[]> {
    return readAnnouncements(this.store, CODE_KEY_STREAM, CODE_KEY_ROTATED);
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
    this.#problem = missing.length === 0 ? undefined : `the log announces code key(s) ${missing.join(', ')}, whose file is not in ${this.config.keysDir}`;
    if (this.#problem !== undefined) this.logger.error(`${this.#problem}: codes minted under them are found the long way, or not at all in a Redis keyspace another hub wrote`);
  }

  /**
   * Rotates the code key (operator command): a new AES-128 key of the next generation is stored in the
   * keys dir (0600, exclusively), announced by a CodeKeyRotated event (its own serial), and mints every
   * code from then on. Codes minted before keep translating (their key stays in the ring). On KurrentDB
   * only the leader rotates.
   */
  rotate(metadata: { readonly actor: string; readonly correlationId: string }): Promise<CodeKeyRotation> {
    if (this.leadership !== null && !this.leadership.acceptsCommands) {
      throw new HubProblem('NOT_LEADER', `this hub (${this.leadership.instanceId}) is a standby and does not rotate the code key; nothing was recorded: send the command to the leader`, { instanceId: this.leadership.instanceId });
    }
    const run = this.#rotating.catch(() => {}).then(() => this.#rotate(metadata));
    this.#rotating = run;
    return run;
  }

  async #rotate(metadata: { readonly actor: string; readonly correlationId: string }): Promise<CodeKeyRotation> {
    const announced = await this.announced();
    const last = announced.at(-1)?.data as CodeKeyRotatedData | undefined;
    const generation = Math.max(last?.generation ?? 0, this.locator.generation) + 1;
    if (generation > MAX_CODE_GENERATION) throw new HubProblem('SERVICE_UNAVAILABLE', `the code key was rotated ${MAX_CODE_GENERATION} times, the most a code can name; nothing was recorded`);
    const previousKeyId = last?.keyId ?? this.locator.fingerprint;
    const now = this.clock();
    const next = createRotatedCodeKey(this.config.keysDir, generation, now);
    const data: CodeKeyRotatedData = { keyId: next.keyId, previousKeyId, generation, rotatedAt: now.toISOString() };
    const result = await this.store.append({
      streamId: CODE_KEY_STREAM,
      expectedRevision: announced.length === 0 ? 'no_stream' : announced.at(-1)!.streamRevision,
      serial: { allocate: true },
      events: [{ type: CODE_KEY_ROTATED, data, terminal: 'completed' }],
      metadata,
    });
    // Announced (durable): it mints from now on.
    this.locator.add(next);
    this.logger.log(`code key rotated: ${previousKeyId} -> ${next.keyId} (generation ${generation}, announced at ${result.firstPosition})`);
    return { ...data, position: result.firstPosition, serial: result.serial };
  }
}
