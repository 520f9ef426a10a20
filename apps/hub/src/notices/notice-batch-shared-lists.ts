import { Logger } from '@nestjs/common';
import { NO_STREAM, StreamDeletedError, StreamNotFoundError, binaryEvent, type AppendStreamState } from '@kurrent/kurrentdb-client';
import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import type { FactoryProvider } from '@nestjs/common';
import type { KurrentLogClient } from '#ledger/kurrentdb-event-store';
import type { SubjectId } from '#linkage';
import { EventSealer } from '#sealing';
import { HubConfig } from '../config/hub-config.js';
import { KURRENTDB_CLIENT } from '../ledger/tokens.js';

/** An event of a batch's shared list: a run of recipients, enciphered. */
export const LIST_PAGE_TYPE = 'NoticeBatchRecipients';
/** The last event of a batch's shared list: it is whole (its total). */
export const LIST_END_TYPE = 'NoticeBatchRecipientsListed';
/** Recipients per list event (≤ 17 bytes each: ≈ 280 KB, below KurrentDB's default maximum append of 1 MiB). */
export const LIST_PAGE_SIZE = 16_384;

const SUBJECT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const NONE = 0;
const UUID = 1;
const TEXT = 2;
const HEADER = 4 + 4 + 12 + 16;

/** The KurrentDB stream beside the log that holds one batch's recipient list while it runs. */
export function sharedListStreamOf(logStream: string, batchId: string): string {
  return `${logStream}-notice-batch-${batchId}`;
}

/** A run of a batch's recipients: places `from`, `from + 1`, … (null: a listed code that named nobody). */
export interface ListPage {
  readonly from: number;
  readonly subjects: readonly (SubjectId | null)[];
}

/**
 * Where a batch's recipient list is kept for whichever hub leads (several hubs on one KurrentDB log): the
 * hub that accepts a batch copies its list here before NoticeBatchStarted is appended, a hub that leads
 * later and holds no list of its own reads it back, and the list is deleted once the batch is completed.
 */
export interface SharedRecipientLists {
  /** Files the whole list durably: `pages` gives places 0 … total − 1 in order. */
  put(batchId: string, total: number, pages: Iterable<readonly (SubjectId | null)[]>): Promise<void>;
  /** The list, page by page; undefined when it holds none (or none whole) for the batch. */
  read(batchId: string): Promise<{ readonly total: number; readonly pages: AsyncIterable<ListPage> } | undefined>;
  /** Forgets the list (a completed batch, or one whose start was not recorded). */
  drop(batchId: string): Promise<void>;
}

/** The hub's shared lists: KurrentRecipientLists on KurrentDB, null on the embedded SQLite log (one hub: its own file is the list). */
export const SHARED_RECIPIENT_LISTS = Symbol('SHARED_RECIPIENT_LISTS');

export const sharedRecipientListsProvider: FactoryProvider<SharedRecipientLists | null> = {
  provide: SHARED_RECIPIENT_LISTS,
  inject: [HubConfig, KURRENTDB_CLIENT, EventSealer],
  useFactory: (config: HubConfig, client: KurrentLogClient | null, sealer: EventSealer) =>
    config.eventStore.kind === 'kurrentdb' && client !== null ? new KurrentRecipientLists(client, config.eventStore.logStream, Buffer.from(sealer.handle('notice-batch-list', 'key/v1', 32), 'hex')) : null,
};

type ListClient = KurrentLogClient & { tombstoneStream?(streamName: string): Promise<unknown> };

/**
 * The shared lists in KurrentDB, one stream per batch beside the log (`<log>-notice-batch-<batchId>`), as
 * the key ring and the relay's position are kept: not in the log (a list is working state, deleted when
 * its batch completes; the log keeps one sealed notice per recipient). Each event holds a run of up to
 * 16,384 recipients as their subject ids' bytes, enciphered together (AES-256-GCM, a fresh IV per event,
 * the batch id and the run's place as associated data) under a key derived from the hub's handle key,
 * which every hub on the log shares (`keys/`); the last event says the list is whole and how long it is.
 * Nothing in the stream reads as a subject id, a code, or equal across two batches.
 */
export class KurrentRecipientLists implements SharedRecipientLists {
  readonly #logger = new Logger('NoticeBatchRunner');

  constructor(
    private readonly client: ListClient,
    private readonly logStream: string,
    private readonly key: Buffer,
  ) {
    if (key.length !== 32) throw new Error('the shared recipient lists need a 32-byte key');
  }

  async put(batchId: string, total: number, pages: Iterable<readonly (SubjectId | null)[]>): Promise<void> {
    const stream = sharedListStreamOf(this.logStream, batchId);
    let state: AppendStreamState = NO_STREAM;
    let from = 0;
    const append = async (type: string, data: Buffer): Promise<void> => {
      const result = (await this.client.appendToStream(stream, [binaryEvent({ id: randomUUID(), type, data })], { streamState: state })) as { nextExpectedRevision?: unknown } | undefined;
      const next = result?.nextExpectedRevision;
      if (typeof next !== 'bigint') throw new Error(`appending to ${stream} gave no next expected revision`);
      state = next;
    };
    let pending: (SubjectId | null)[] = [];
    const flush = async (): Promise<void> => {
      if (pending.length === 0) return;
      await append(LIST_PAGE_TYPE, this.#seal(batchId, from, pending));
      from += pending.length;
      pending = [];
    };
    for (const page of pages) {
      for (const subject of page) {
        pending.push(subject);
        if (pending.length === LIST_PAGE_SIZE) await flush();
      }
    }
    await flush();
    if (from !== total) throw new Error(`notice batch ${batchId}: the list gave ${from} recipients, not ${total}`);
    await append(LIST_END_TYPE, Buffer.from(JSON.stringify({ total }), 'utf8'));
  }

  async read(batchId: string): Promise<{ readonly total: number; readonly pages: AsyncIterable<ListPage> } | undefined> {
    const stream = sharedListStreamOf(this.logStream, batchId);
    let total: number | undefined;
    try {
      for await (const resolved of this.client.readStream(stream, { fromRevision: 'end', maxCount: 1n, direction: 'backwards' })) {
        const event = resolved.event;
        if (event?.type !== LIST_END_TYPE || !(event.data instanceof Uint8Array)) continue;
        const parsed = JSON.parse(Buffer.from(event.data).toString('utf8')) as { total?: unknown };
        if (typeof parsed.total === 'number' && Number.isSafeInteger(parsed.total) && parsed.total >= 0) total = parsed.total;
      }
    } catch (error) {
      if (error instanceof StreamNotFoundError || error instanceof StreamDeletedError) return undefined;
      throw error;
    }
    if (total === undefined) return undefined;
    const whole = total;
    const client = this.client;
    const open = (data: Buffer): ListPage => this.#open(batchId, data);
    async function* pages(): AsyncIterable<ListPage> {
      let next = 0;
      for await (const resolved of client.readStream(stream, { fromRevision: 0n, maxCount: BigInt(Number.MAX_SAFE_INTEGER) })) {
        const event = resolved.event;
        if (event === undefined || event.type !== LIST_PAGE_TYPE) continue;
        if (!(event.data instanceof Uint8Array)) throw new Error(`${stream} at revision ${event.revision} is not a recipient list page`);
        const page = open(Buffer.from(event.data));
        if (page.from !== next) throw new Error(`${stream} at revision ${event.revision} lists recipients from ${page.from}, not ${next}`);
        next += page.subjects.length;
        yield page;
      }
      if (next !== whole) throw new Error(`${stream} lists ${next} recipients, its end says ${whole}`);
    }
    return { total, pages: pages() };
  }

  async drop(batchId: string): Promise<void> {
    const stream = sharedListStreamOf(this.logStream, batchId);
    if (this.client.tombstoneStream === undefined) return;
    try {
      await this.client.tombstoneStream(stream);
    } catch (error) {
      if (error instanceof StreamDeletedError || error instanceof StreamNotFoundError) return;
      // Left for KurrentDB's operator: the list is enciphered, and no hub reads it once its batch is completed.
      this.#logger.warn(`the recipient list of notice batch ${batchId} (${stream}) could not be deleted: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** from (u32) ‖ count (u32) ‖ IV (12) ‖ tag (16) ‖ AES-256-GCM of the entries. */
  #seal(batchId: string, from: number, subjects: readonly (SubjectId | null)[]): Buffer {
    const parts: Buffer[] = [];
    for (const subject of subjects) {
      if (subject === null) parts.push(Buffer.of(NONE));
      else if (SUBJECT_ID.test(subject)) parts.push(Buffer.of(UUID), Buffer.from(subject.replaceAll('-', ''), 'hex'));
      else {
        const text = Buffer.from(subject, 'utf8');
        const length = Buffer.alloc(2);
        length.writeUInt16BE(text.length);
        parts.push(Buffer.of(TEXT), length, text);
      }
    }
    const header = Buffer.alloc(8);
    header.writeUInt32BE(from, 0);
    header.writeUInt32BE(subjects.length, 4);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.concat([Buffer.from(`${batchId}\0`, 'utf8'), header]));
    const body = Buffer.concat([cipher.update(Buffer.concat(parts)), cipher.final()]);
    return Buffer.concat([header, iv, cipher.getAuthTag(), body]);
  }

  #open(batchId: string, data: Buffer): ListPage {
    if (data.length < HEADER) throw new Error(`a recipient list page of notice batch ${batchId} is too short`);
    const header = data.subarray(0, 8);
    const from = header.readUInt32BE(0);
    const count = header.readUInt32BE(4);
    const decipher = createDecipheriv('aes-256-gcm', this.key, data.subarray(8, 20));
    decipher.setAAD(Buffer.concat([Buffer.from(`${batchId}\0`, 'utf8'), header]));
    decipher.setAuthTag(data.subarray(20, 36));
    const plain = Buffer.concat([decipher.update(data.subarray(HEADER)), decipher.final()]);
    const subjects: (SubjectId | null)[] = [];
    let at = 0;
    while (at < plain.length) {
      const tag = plain[at]!;
      at += 1;
      if (tag === NONE) subjects.push(null);
      else if (tag === UUID) {
        const h = plain.subarray(at, at + 16).toString('hex');
        at += 16;
        subjects.push(`${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}` as SubjectId);
      } else if (tag === TEXT) {
        const length = plain.readUInt16BE(at);
        subjects.push(plain.subarray(at + 2, at + 2 + length).toString('utf8') as SubjectId);
        at += 2 + length;
      } else throw new Error(`a recipient list page of notice batch ${batchId} holds an entry of unknown kind ${tag}`);
    }
    if (subjects.length !== count) throw new Error(`a recipient list page of notice batch ${batchId} at ${from} holds ${subjects.length} recipients, its header says ${count}`);
    return { from, subjects };
  }
}
