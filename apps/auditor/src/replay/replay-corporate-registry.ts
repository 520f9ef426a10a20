import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { canonicalize, type ReadAllOptions, type RecordedEvent } from '#ledger';
import { CORPORATE_REGISTRY_FILE, MAX_CORPORATE_LIMIT, ProjectionError, SqliteCorporateRegistry, catchUp, type Corporation } from '#projections';
import { AuditorError } from '../errors.js';

/** Where the hub keeps its corporate registry unless told otherwise: beside the ledger file. */
export function defaultRegistryPath(ledgerPath: string): string {
  return join(dirname(ledgerPath), CORPORATE_REGISTRY_FILE);
}

export interface CorporationDifference {
  readonly corporateNumber: string;
  /** Fields that differ (every field when one side has no such corporation). */
  readonly fields: readonly string[];
  readonly live: Corporation | null;
  readonly rebuilt: Corporation | null;
}

export interface CorporateRegistryDiff {
  readonly projection: 'corporate-registry';
  readonly ok: boolean;
  readonly path: string;
  /** Set when there was nothing to compare (no live file at the default path): not a failure. */
  readonly skipped?: string;
  readonly liveCheckpoint: number;
  readonly rebuiltCheckpoint: number;
  readonly liveCorporations: number;
  readonly rebuiltCorporations: number;
  readonly liveDigest: string | null;
  readonly rebuiltDigest: string | null;
  readonly differingCorporations: number;
  /** The first difference in corporate number order. */
  readonly firstDifference: CorporationDifference | null;
}

function ledgerReader(db: Database.Database): { readAll(options?: ReadAllOptions): Promise<readonly RecordedEvent[]> } {
  const page = db.prepare('SELECT envelope FROM events WHERE position >= ? ORDER BY position LIMIT ?').pluck();
  return { readAll: async (o = {}) => (page.all(o.fromPosition ?? 0, o.maxCount ?? -1) as string[]).map((text) => JSON.parse(text) as RecordedEvent) };
}

/**
 * Rebuilds the public corporate registry from the raw events into a fresh file, up to the live file's
 * checkpoint, and compares every corporation (I8). `required`: the path was given explicitly, so a
 * missing file is an error rather than "nothing to compare".
 */
export async function replayCorporateRegistry(ledgerPath: string, registryPath: string, required: boolean): Promise<CorporateRegistryDiff> {
  if (!existsSync(registryPath)) {
    if (required) throw new AuditorError('SOURCE_UNREADABLE', `no corporate registry at ${registryPath}; give the hub's registry file with --registry`);
    return {
      projection: 'corporate-registry', ok: true, path: registryPath, skipped: 'no live registry file beside the ledger',
      liveCheckpoint: -1, rebuiltCheckpoint: -1, liveCorporations: 0, rebuiltCorporations: 0, liveDigest: null, rebuiltDigest: null, differingCorporations: 0, firstDifference: null,
    };
  }
  let live: SqliteCorporateRegistry;
  try {
    live = new SqliteCorporateRegistry({ path: registryPath, readonly: true });
  } catch (error) {
    throw new AuditorError('SOURCE_UNREADABLE', `cannot read ${registryPath} as a corporate registry: ${error instanceof ProjectionError ? error.message : (error as Error).message}`);
  }
  const ledger = new Database(ledgerPath, { readonly: true, fileMustExist: true });
  const scratch = mkdtempSync(join(tmpdir(), 'auditor-replay-registry-'));
  const rebuilt = new SqliteCorporateRegistry({ path: join(scratch, CORPORATE_REGISTRY_FILE) });
  try {
    const liveCheckpoint = await live.checkpoint();
    const rebuiltCheckpoint = await catchUp(ledgerReader(ledger), rebuilt, { pageSize: 10_000, toPosition: liveCheckpoint });
    const [a, b] = [await live.digest(), await rebuilt.digest()];
    const diff = a.hex === b.hex ? { differingCorporations: 0, firstDifference: null } : await diffCorporations(live, rebuilt);
    return {
      projection: 'corporate-registry',
      ok: rebuiltCheckpoint === liveCheckpoint && a.hex === b.hex,
      path: registryPath,
      liveCheckpoint,
      rebuiltCheckpoint,
      liveCorporations: a.corporations,
      rebuiltCorporations: b.corporations,
      liveDigest: a.hex,
      rebuiltDigest: b.hex,
      ...diff,
    };
  } finally {
    await Promise.all([live.close(), rebuilt.close()]);
    ledger.close();
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Walks both registries in corporate number order, a page at a time, counting differences and keeping the first. */
async function diffCorporations(live: SqliteCorporateRegistry, rebuilt: SqliteCorporateRegistry): Promise<Pick<CorporateRegistryDiff, 'differingCorporations' | 'firstDifference'>> {
  const cursor = (registry: SqliteCorporateRegistry) => {
    let buffer: Corporation[] = [];
    let after: string | undefined;
    let done = false;
    return async (): Promise<Corporation | undefined> => {
      if (buffer.length === 0 && !done) {
        const page = await registry.search({ limit: MAX_CORPORATE_LIMIT, ...(after === undefined ? {} : { after }) });
        buffer = page.corporations;
        after = page.next;
        done = after === undefined;
      }
      return buffer.shift();
    };
  };
  const [nextLive, nextRebuilt] = [cursor(live), cursor(rebuilt)];
  let [a, b] = [await nextLive(), await nextRebuilt()];
  let differingCorporations = 0;
  let firstDifference: CorporationDifference | null = null;
  const differ = (d: CorporationDifference) => {
    differingCorporations += 1;
    firstDifference ??= d;
  };
  while (a !== undefined || b !== undefined) {
    if (b === undefined || (a !== undefined && a.corporateNumber < b.corporateNumber)) {
      differ({ corporateNumber: a!.corporateNumber, fields: Object.keys(a!), live: a!, rebuilt: null });
      a = await nextLive();
    } else if (a === undefined || b.corporateNumber < a.corporateNumber) {
      differ({ corporateNumber: b.corporateNumber, fields: Object.keys(b), live: null, rebuilt: b });
      b = await nextRebuilt();
    } else {
      const fields = (Object.keys(a) as (keyof Corporation)[]).filter((k) => canonicalize(a![k]) !== canonicalize(b![k]));
      if (fields.length > 0) differ({ corporateNumber: a.corporateNumber, fields, live: a, rebuilt: b });
      [a, b] = [await nextLive(), await nextRebuilt()];
    }
  }
  return { differingCorporations, firstDifference };
}
