import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AppendRequest } from '#ledger';
import { EventSealer, SealWorkers, SqliteKeyring, commitmentsOf, generateSealingKeysFile, parseSealingKeys, verifyOpening } from '#sealing';

const dirs: string[] = [];
const closing: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of closing.splice(0).reverse()) await c();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const keys = parseSealingKeys(generateSealingKeysFile(new Date()));
const people = Array.from({ length: 40 }, (_, i) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`);

function notice(i: number, subjectId: string): AppendRequest {
  return {
    streamId: `notice-${i}`,
    expectedRevision: 'no_stream',
    events: [{ type: 'NoticeSent', schemaVersion: 3, data: { noticeId: `0f6a2d55-1c2b-4e7a-9b1d-${i.toString(16).padStart(12, '0')}`, subjectId, agencyId: 'muroran-city', title: 'お知らせ', body: '本文', sentAt: '2026-12-05T00:00:00.000Z', batchId: 'b' } }],
    serial: { allocate: true },
    metadata: { actor: 'agency:muroran-city', correlationId: 'c' },
  };
}

describe('SealWorkers', () => {
  it('seals in worker threads what the sealer seals on this thread: the stored form opens with the hub\'s sealer, a fresh nonce each, an erased person refused', async () => {
    const d = mkdtempSync(join(tmpdir(), 'seal-workers-'));
    dirs.push(d);
    const path = join(d, 'keyring.sqlite');
    const ring = new SqliteKeyring({ path, keys });
    closing.push(() => ring.close());
    const sealer = new EventSealer(keys, ring);
    ring.ensureSubjectKeys(people.slice(0, 30));
    ring.shredSubject(people[5]!, new Date().toISOString());
    const workers = new SealWorkers({ keys, keyringPath: path, threads: 2, sealer });
    closing.push(() => workers.close());

    // People 30–39 have no key yet: the worker makes it in the ring, as the inline seal would.
    const requests = people.map((p, i) => notice(i, p));
    const [first, second] = await Promise.all([workers.seal(requests.slice(0, 20)), workers.seal(requests.slice(20))]);
    const out = [...first!, ...second!];
    expect(out).toHaveLength(40);
    const nonces = new Set<string>();
    out.forEach((o, i) => {
      if (i === 5) {
        expect('error' in o && o.error.code).toBe('KEY_SHREDDED');
        return;
      }
      if (!('request' in o)) throw new Error(`append ${i} was not sealed: ${o.error.message}`);
      const { request } = o;
      expect(request.streamId).toBe(`notice-${i}`);
      expect(request.serial).toEqual({ allocate: true });
      const stored = request.events[0]!;
      expect(JSON.stringify(stored)).not.toContain(people[i]!);
      expect(JSON.stringify(stored)).not.toContain('お知らせ');
      const data = stored.data as { sealed: { nonce: string } };
      nonces.add(data.sealed.nonce);
      const asStored = { type: stored.type, schemaVersion: stored.schemaVersion ?? 1, streamId: request.streamId, data: stored.data };
      const opened = sealer.open(asStored);
      expect(opened.state).toBe('opened');
      expect(opened.event.data).toMatchObject({ subjectId: people[i], title: 'お知らせ', body: '本文', batchId: 'b' });
      const openings = sealer.openings(asStored, new Set(['citizen', 'agency', 'hub'] as const));
      expect(openings.map((x) => x.field).sort()).toEqual(['body', 'subjectId', 'title']);
      for (const opening of openings) verifyOpening(asStored, opening);
      expect(commitmentsOf(stored.data)).toBeDefined();
    });
    expect(nonces.size).toBe(39);
    // The keys the workers made are in the ring's file.
    const reopened = new SqliteKeyring({ path, keys });
    closing.push(() => reopened.close());
    for (const p of people.slice(30)) expect(reopened.subjectKey(p, false)).not.toBeUndefined();
  });
});
