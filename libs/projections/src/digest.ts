import { createHash } from 'node:crypto';
import { canonicalize } from '#ledger';
import type { ProvisionRecord } from './provision-record.js';

/** Incremental digest over records in serial order: SHA-256 of each record's RFC 8785 text followed by a newline. */
export class RecordDigest {
  private readonly hash = createHash('sha256');

  add(record: ProvisionRecord): void {
    this.hash.update(canonicalize(record)!);
    this.hash.update('\n');
  }

  hex(): string {
    return this.hash.digest('hex');
  }
}
