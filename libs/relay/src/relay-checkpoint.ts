import Database from 'better-sqlite3';

/**
 * Where a relay keeps the position of the last event Kafka acknowledged. `save` MUST NOT resolve before
 * the position is durable; the relay calls it only after the send of that event resolved.
 */
export interface RelayCheckpointStore {
  /** -1 before any event was relayed. */
  load(): Promise<number>;
  save(position: number): Promise<void>;
  close(): Promise<void>;
}

/** The relay checkpoint file's name in the hub's data directory, beside the ledger file. */
export const RELAY_CHECKPOINT_FILE = 'relay.sqlite';

/**
 * A SQLite file (WAL, synchronous=FULL) with one row per relay name (the topic by default), so several
 * relays can share a file. A save is one durable transaction.
 */
export class SqliteRelayCheckpoint implements RelayCheckpointStore {
  private readonly db: Database.Database;
  private readonly name: string;
  private readonly read: Database.Statement<[string], number>;
  private readonly write: Database.Statement<[string, number]>;

  constructor(options: { readonly path: string; readonly name: string }) {
    this.db = new Database(options.path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.exec('CREATE TABLE IF NOT EXISTS relay_checkpoint (name TEXT PRIMARY KEY, position INTEGER NOT NULL) WITHOUT ROWID');
    this.read = this.db.prepare<[string], number>('SELECT position FROM relay_checkpoint WHERE name = ?').pluck();
    this.write = this.db.prepare<[string, number]>(
      'INSERT INTO relay_checkpoint (name, position) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET position = excluded.position',
    );
    this.name = options.name;
  }

  async load(): Promise<number> {
    return this.read.get(this.name) ?? -1;
  }

  async save(position: number): Promise<void> {
    this.write.run(this.name, position);
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

/** For tests and the in-memory hub: forgets everything with the process. */
export class InMemoryRelayCheckpoint implements RelayCheckpointStore {
  constructor(private position = -1) {}

  async load(): Promise<number> {
    return this.position;
  }

  async save(position: number): Promise<void> {
    this.position = position;
  }

  async close(): Promise<void> {}
}
