import { AppendPlanner, type LedgerIndex, type StoredIdempotency } from './append-planner.js';
import { BatchedEventStore, type BatchOutcomes } from './batched-event-store.js';
import type { RecordedEvent } from './envelope.js';
import type { AppendRequest, AppendResult, ReadAllOptions, ReadStreamOptions, SerialStatus } from './event-store.port.js';
import { uuidv7 } from './ids.js';
import type { SerialNumber } from './serial-number.js';

export interface InMemoryEventStoreOptions {
  readonly nodeId?: number;
  readonly now?: () => Date;
  readonly newEventId?: () => string;
}

/** The event store in process memory: same rules as the durable adapters, nothing survives a restart. */
export class InMemoryEventStore extends BatchedEventStore {
  private readonly events: RecordedEvent[] = [];
  private readonly streams = new Map<string, number[]>();
  private readonly serials = new Map<string, number[]>();
  private readonly open = new Set<string>();
  private readonly claims = new Set<string>();
  private readonly keys = new Map<string, StoredIdempotency>();
  private readonly planner: AppendPlanner;
  private readonly index: LedgerIndex;

  constructor(options: InMemoryEventStoreOptions = {}) {
    super();
    const now = options.now ?? (() => new Date());
    this.planner = new AppendPlanner({ nodeId: options.nodeId ?? 1, now, newEventId: options.newEventId ?? uuidv7 });
    this.index = {
      streamRevision: (id) => {
        const s = this.streams.get(id);
        return s ? s.length - 1 : undefined;
      },
      serialState: (serial) => (this.open.has(serial) ? 'open' : this.serials.has(serial) ? 'closed' : undefined),
      claimHeld: (claim) => this.claims.has(claim),
      idempotency: (key) => this.keys.get(key),
      lastSequence: (day, nodeId) => {
        const prefix = `${day}${String(nodeId).padStart(2, '0')}`;
        let max = 0;
        for (const s of this.serials.keys()) if (s.startsWith(prefix)) max = Math.max(max, Number(s.slice(10)));
        return max;
      },
    };
  }

  protected commitBatch(requests: readonly AppendRequest[]): BatchOutcomes {
    const plan = this.planner.plan(requests, this.events.length, this.index);
    for (const { canonical } of plan.events) {
      // Store a parsed copy of the canonical text so callers cannot mutate what was "written".
      const stored = JSON.parse(canonical) as RecordedEvent;
      this.events.push(stored);
      push(this.streams, stored.streamId, stored.position);
      push(this.serials, stored.serial, stored.position);
    }
    for (const { serial } of plan.openedSerials) this.open.add(serial);
    for (const serial of plan.closedSerials) this.open.delete(serial);
    for (const { claim } of plan.claims) this.claims.add(claim);
    for (const { key, record } of plan.idempotency) this.keys.set(key, record);
    return plan.outcomes;
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<readonly RecordedEvent[]> {
    const positions = this.streams.get(streamId) ?? [];
    const from = options.fromRevision ?? 0;
    const to = options.maxCount === undefined ? positions.length : from + options.maxCount;
    return positions.slice(from, to).map((p) => this.events[p]!);
  }

  async readAll(options: ReadAllOptions = {}): Promise<readonly RecordedEvent[]> {
    const from = options.fromPosition ?? 0;
    return this.events.slice(from, options.maxCount === undefined ? undefined : from + options.maxCount);
  }

  async readSerial(serial: SerialNumber): Promise<readonly RecordedEvent[]> {
    return (this.serials.get(serial) ?? []).map((p) => this.events[p]!);
  }

  async serialStatus(serial: SerialNumber): Promise<SerialStatus | undefined> {
    return serialStatusOf(await this.readSerial(serial));
  }

  async openSerials(): Promise<readonly SerialNumber[]> {
    return [...this.open].sort() as SerialNumber[];
  }

  async idempotentOutcome(key: string): Promise<{ requestDigest: string; result: AppendResult } | undefined> {
    const stored = this.keys.get(key);
    return stored && { requestDigest: stored.requestDigest, result: { ...stored.result, status: 'duplicate' } };
  }

  async head(): Promise<number> {
    return this.events.length;
  }

  protected closeStorage(): void {}
}

function push(map: Map<string, number[]>, key: string, value: number): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

export function serialStatusOf(events: readonly RecordedEvent[]): SerialStatus | undefined {
  const first = events[0];
  if (!first) return undefined;
  const end = events.find((e) => e.terminal !== undefined);
  return end?.terminal
    ? { serial: first.serial, state: 'closed', outcome: end.terminal, firstPosition: first.position }
    : { serial: first.serial, state: 'open', firstPosition: first.position };
}
