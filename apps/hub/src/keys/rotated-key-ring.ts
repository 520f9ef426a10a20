import { Logger } from '@nestjs/common';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { AppendResult, EventStore, RecordedEvent } from '#ledger';
import type { HubConfig } from '../config/hub-config.js';
import type { Leadership } from '../leadership/leadership.js';
import type { Clock } from '../ledger/tokens.js';
import { readAnnouncements } from './announcements.js';
import { loadOrCreateSecretFile } from './key-file.js';
import { AnnouncedRotations, appendRotation, type RotationMetadata } from './rotation.js';

/** A rotated key's id: 16 hex digits, the middle of its file's name. */
const KEY_ID = /^[0-9a-f]{16}$/;

/** A rotated key's file, `<prefix>.<16 hex key id>.key.json`, beside the first key's file. */
function rotatedKeyFileName(prefix: string, keyId: string): string {
  return `${prefix}.${keyId}.key.json`;
}

/**
 * Stores a newly drawn key under its key id (mode 0600, created exclusively), BEFORE it is announced: a
 * key the log announces always has its file here. A key id met again (64 bits) is drawn again. Answers
 * the file as written.
 */
export function storeRotatedKeyFile(keysDir: string, prefix: string, draw: () => { readonly keyId: string; readonly file: Record<string, unknown> }): { readonly path: string; readonly file: Record<string, unknown> } {
  for (;;) {
    const drawn = draw();
    const path = join(keysDir, rotatedKeyFileName(prefix, drawn.keyId));
    let created = false;
    const file = loadOrCreateSecretFile(path, () => {
      created = true;
      return drawn.file;
    });
    if (created) return { path, file };
  }
}

/** A rotated key's file, by its key id, if this hub holds it (undefined for an id that names no such file). */
export function readRotatedKeyFile(keysDir: string, prefix: string, keyId: string): { readonly path: string; readonly file: Record<string, unknown> } | undefined {
  const name = rotatedKeyFileName(prefix, keyId);
  if (!KEY_ID.test(keyId) || !readdirSync(keysDir).includes(name)) return undefined;
  const path = join(keysDir, name);
  return { path, file: loadOrCreateSecretFile(path, () => ({})) };
}

/** What every rotated key's announcement says (its event's data has more: see each ring). */
export interface RotatedKeyData {
  readonly keyId: string;
  readonly previousKeyId: string;
  readonly rotatedAt: string;
}

/** Which key a ring rotates, and where the log announces it. */
export interface RotatedKeyRingSpec {
  /** The stream of its announcements, in rotation order. */
  readonly stream: string;
  /** The announcement's event type. */
  readonly type: string;
  /** What is rotated, in log lines and refusals: "code key", "provision signing key". */
  readonly what: string;
  /** The logger's context. */
  readonly logger: string;
}

/**
 * A key of the hub that is rotated as a ring of generations (docs/key-rotation.md): the first key (made at
 * first start) and each key the log announces on the ring's stream, stored in the keys dir under its key
 * id. At start and on takeover the ring takes the announced keys it holds (`load`, per key); a rotation
 * makes the next key and stores it (`make`), announces it (one event, its own serial, appended only if no
 * other announcement came in between), then uses it (`adopt`). What a retired key may still do is each
 * key's own.
 */
export abstract class RotatedKeyRing<Data extends RotatedKeyData, Key, Rotation> extends AnnouncedRotations {
  protected readonly logger: Logger;
  #problem: string | undefined;

  protected constructor(
    private readonly spec: RotatedKeyRingSpec,
    config: HubConfig,
    store: EventStore,
    clock: Clock,
    leadership: Leadership | null,
  ) {
    super(config, store, clock, leadership);
    this.logger = new Logger(spec.logger);
  }

  /** Why this hub lacks (or does not use) a key the log announces, if it does. */
  get problem(): string | undefined {
    return this.#problem;
  }

  /** Records (and logs, with its consequence) why this hub lacks a key the log announces; undefined: it lacks none. */
  protected setProblem(problem: string | undefined, consequence?: string): void {
    this.#problem = problem;
    if (problem !== undefined) this.logger.error(consequence === undefined ? problem : `${problem}: ${consequence}`);
  }

  /** The announcements, oldest first. */
  async announced(): Promise<readonly RecordedEvent[]> {
    return readAnnouncements(this.store, this.spec.stream, this.spec.type);
  }

  /** Rotates the key (operator command): refused on a standby (503 NOT_LEADER, nothing recorded); one at a time, each naming the one before. */
  rotate(metadata: RotationMetadata): Promise<Rotation> {
    return this.command(`the ${this.spec.what}`, () => this.#rotate(metadata));
  }

  async #rotate(metadata: RotationMetadata): Promise<Rotation> {
    const announced = await this.announced();
    const last = announced.at(-1);
    const { key, data } = this.make(last?.data as Data | undefined);
    const result = await appendRotation(this.store, this.spec.stream, this.spec.type, data, last === undefined ? 'no_stream' : last.streamRevision, metadata);
    // Announced (durable): it is used from now on.
    this.adopt(key);
    this.logger.log(`${this.spec.what} rotated: ${data.previousKeyId} -> ${data.keyId} (${this.describe(data)}announced at ${result.firstPosition})`);
    return this.answer(data, result);
  }

  /** The next key, stored in the keys dir, and its announcement's data; `last`: the last announcement's (none before the first rotation). */
  protected abstract make(last: Data | undefined): { readonly key: Key; readonly data: Data };

  /** Uses the key just announced. */
  protected abstract adopt(key: Key): void;

  /** The answer to the rotation command. */
  protected abstract answer(data: Data, result: AppendResult): Rotation;

  /** More about a rotation for its log line, ending in ", " (none by default). */
  protected describe(_data: Data): string {
    return '';
  }
}
