import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { MemoryTree, formatVerifierKey, generateSigningKey, leafHash as libLeafHash, signCheckpoint, toHex as libToHex } from '#audit-log';
import { canonicalEnvelope, type NewEvent, type RecordedEvent } from '#ledger';
import { canonicalize } from '#ledger';
import { inMemorySealer, type EventSealer, type Opening } from '#sealing';
import { canonicalJson } from '../web/src/verify/jcs.js';
import { commitment } from '../web/src/verify/commitment.js';
import { leafHash } from '../web/src/verify/merkle.js';
import { toHex } from '../web/src/verify/bytes.js';
import { verifyRecord, type InclusionAnswer, type VerifyInput } from '../web/src/verify/verify-record.js';
import { commitment as libCommitment } from '#sealing';

// A small log made by the real libraries: events sealed by libs/sealing's EventSealer, canonical
// envelopes of libs/ledger, a Merkle tree, a checkpoint signed and a verifier key formatted by
// libs/audit-log, openings as the hub gives a citizen. The browser's verifier must accept it and name
// exactly what is wrong when one byte is changed.

const ORIGIN = 'linkage-ledger.example/hub/01';
const SERIAL = '20261201010000000007';
const SUBJECT = '5b0c1c8e-9a43-4d0e-8f65-0c3f2a1b9d77';

function recorded(sealer: EventSealer, streamId: string, e: NewEvent, position: number, serial: string, terminal?: string): RecordedEvent {
  const stored = sealer.seal(streamId, e);
  return {
    eventId: randomUUID() as RecordedEvent['eventId'],
    type: stored.type,
    schemaVersion: stored.schemaVersion ?? 1,
    streamId,
    streamRevision: 0,
    position,
    serial: serial as RecordedEvent['serial'],
    ...(terminal === undefined ? {} : { terminal: terminal as RecordedEvent['terminal'] }),
    recordedAt: '2026-12-01T00:00:00.000Z',
    data: stored.data,
    metadata: { actor: 'agency:jpn-pension-service', correlationId: 'c' },
  } as RecordedEvent;
}

let input: VerifyInput;
let otherKey: string;

beforeAll(() => {
  const sealer = inMemorySealer();
  const queryId = randomUUID();
  const events: RecordedEvent[] = [];
  // Filler events of other serials, so the path has hashes on both sides.
  for (let i = 0; i < 5; i++) {
    events.push(recorded(sealer, `corp-${i}`, { type: 'CorporateNumberDesignated', schemaVersion: 1, data: { n: i } }, events.length, `2026120101000000000${i}`, 'completed'));
  }
  events.push(
    recorded(sealer, `query-${queryId}`, {
      type: 'QueryAccepted',
      schemaVersion: 1,
      data: { queryId, requesterAgencyId: 'jpn-pension-service', requesterKind: 'pension-service', providerAgencyId: 'muroran-city', providerKind: 'municipality', procedureCode: 'pension-award-claim', itemCodes: ['local-tax'], tableVersion: 1, subjectId: SUBJECT, requesterCode: 'AbCdEfGhIjKlMnOpQrStUw', acceptedAt: '2026-12-01T09:00:00.000Z' },
    }, events.length, SERIAL),
  );
  events.push(
    recorded(sealer, `query-${queryId}`, {
      type: 'ProvisionAnswered',
      schemaVersion: 1,
      data: { queryId, requesterAgencyId: 'jpn-pension-service', providerAgencyId: 'muroran-city', subjectId: SUBJECT, answerDigest: 'x'.repeat(43), answerSize: 120, encrypted: true, answeredAt: '2026-12-01T09:00:01.000Z' },
    }, events.length, SERIAL, 'completed'),
  );
  for (let i = 0; i < 4; i++) {
    events.push(recorded(sealer, `corp-x${i}`, { type: 'CorporateNumberDesignated', schemaVersion: 1, data: { n: 10 + i } }, events.length, `2026120101000000002${i}`, 'completed'));
  }
  const texts = events.map((e) => canonicalEnvelope(e));
  const tree = new MemoryTree(texts.map((t) => libLeafHash(t)));
  const signing = generateSigningKey();
  const note = signCheckpoint({ origin: ORIGIN, size: tree.size, root: tree.root(), timeMs: 1_764_579_600_000 }, { name: ORIGIN, privateKey: signing.privateKey });
  const verifierKey = formatVerifierKey({ name: ORIGIN, publicKey: signing.publicKey });
  otherKey = formatVerifierKey({ name: ORIGIN, publicKey: generateSigningKey().publicKey });
  const inclusion: InclusionAnswer = {
    size: tree.size,
    rootHex: libToHex(tree.root()),
    proofs: events
      .filter((e) => e.serial === SERIAL)
      .map((e) => ({
        position: e.position,
        serial: SERIAL,
        envelope: texts[e.position]!,
        leafHex: libToHex(tree.leafHash(e.position)),
        proof: tree.inclusionProof(e.position).map(libToHex),
        openings: sealer.openings(JSON.parse(texts[e.position]!) as RecordedEvent, new Set(['citizen'])) as Opening[],
      })),
  };
  input = { serial: SERIAL, inclusion, checkpoint: note, verifierKey };
});

/** A deep copy of the input with one change. */
function changed(edit: (i: { -readonly [K in keyof VerifyInput]: VerifyInput[K] } & { inclusion: { size: number; rootHex: string; proofs: { position: number; envelope: string; leafHex: string; proof: string[]; openings: { field: string; value: unknown; salt: string }[] }[] } }) => void): VerifyInput {
  const copy = structuredClone(input) as Parameters<typeof edit>[0];
  edit(copy);
  return copy;
}

/** One character of `text` at `at` replaced by another of the same alphabet. */
function flip(text: string, at: number, alphabet = '0123456789abcdef'): string {
  const c = text[at]!;
  const i = alphabet.indexOf(c);
  const other = i < 0 ? (c === 'a' ? 'b' : 'a') : alphabet[(i + 1) % alphabet.length]!;
  return text.slice(0, at) + other + text.slice(at + 1);
}

describe('the browser verifier against proofs made by libs/audit-log and openings by libs/sealing', () => {
  it('agrees with the libraries on leaf hashes, canonical JSON and commitments', async () => {
    const text = input.inclusion.proofs[0]!.envelope;
    expect(toHex(await leafHash(text))).toBe(libToHex(libLeafHash(text)));
    const value = { b: [1, 2.5, 'ü\u2028"'], a: null, 'é': true, A: { z: 1e21, y: -0 } };
    expect(canonicalJson(value)).toBe(canonicalize(value));
    const salt = new Uint8Array(16).map((_, i) => i * 7);
    expect(toHex(await commitment('QueryAccepted', 'subjectId', salt, SUBJECT))).toBe(libCommitment('QueryAccepted', 'subjectId', salt, SUBJECT).toString('hex'));
  });

  it('accepts a valid proof: every event of the serial, its openings, the checkpoint size and time', async () => {
    const result = await verifyRecord(input);
    expect(result).toMatchObject({ ok: true, serial: SERIAL, size: 11, timeMs: 1_764_579_600_000, keyName: ORIGIN });
    if (!result.ok) throw new Error(result.message);
    expect(result.events.map((e) => e.type)).toEqual(['QueryAccepted', 'ProvisionAnswered']);
    expect(result.events.flatMap((e) => e.opened)).toEqual([
      { field: 'subjectId', value: SUBJECT },
      { field: 'subjectId', value: SUBJECT },
    ]);
  });

  it('fails on a changed byte in the stored envelope: the leaf', async () => {
    const result = await verifyRecord(changed((i) => (i.inclusion.proofs[0]!.envelope = i.inclusion.proofs[0]!.envelope.replace('pension-award-claim', 'pension-award-clain'))));
    expect(result).toMatchObject({ ok: false, code: 'LEAF_MISMATCH', position: 5 });
  });

  it('fails on a changed envelope whose leaf was changed to match: the root', async () => {
    const edited = input.inclusion.proofs[1]!.envelope.replace('"answerSize":120', '"answerSize":121');
    const leafHex = toHex(await leafHash(edited));
    const result = await verifyRecord(changed((i) => Object.assign(i.inclusion.proofs[1]!, { envelope: edited, leafHex })));
    expect(result).toMatchObject({ ok: false, code: 'ROOT_MISMATCH', position: 6 });
  });

  it('fails on a changed byte in the inclusion path', async () => {
    const result = await verifyRecord(changed((i) => (i.inclusion.proofs[0]!.proof[1] = flip(i.inclusion.proofs[0]!.proof[1]!, 10))));
    expect(result).toMatchObject({ ok: false, code: 'ROOT_MISMATCH', position: 5 });
    if (result.ok) return;
    expect(result.message).toContain('position 5');
  });

  it('fails on a path of the wrong length or with a value that is not a hash', async () => {
    expect(await verifyRecord(changed((i) => i.inclusion.proofs[0]!.proof.pop()))).toMatchObject({ ok: false, code: 'PATH_MALFORMED', position: 5 });
    expect(await verifyRecord(changed((i) => (i.inclusion.proofs[0]!.proof[0] = 'zz')))).toMatchObject({ ok: false, code: 'PATH_MALFORMED' });
  });

  it('fails on a changed byte in the root, signed or reported', async () => {
    const lines = input.checkpoint.split('\n');
    lines[2] = flip(lines[2]!, 5, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');
    expect(await verifyRecord({ ...input, checkpoint: lines.join('\n') })).toMatchObject({ ok: false, code: 'CHECKPOINT_SIGNATURE_INVALID' });
    expect(await verifyRecord(changed((i) => (i.inclusion.rootHex = flip(i.inclusion.rootHex, 0))))).toMatchObject({ ok: false, code: 'REPORTED_ROOT_MISMATCH', size: 11 });
  });

  it('fails on a changed byte in the signature, another key, another origin, another size', async () => {
    const sigLine = input.checkpoint.split('\n').at(-2)!;
    const tampered = input.checkpoint.replace(sigLine, flip(sigLine, sigLine.length - 8, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'));
    expect(await verifyRecord({ ...input, checkpoint: tampered })).toMatchObject({ ok: false, code: 'CHECKPOINT_SIGNATURE_INVALID' });
    expect(await verifyRecord({ ...input, verifierKey: otherKey })).toMatchObject({ ok: false, code: 'CHECKPOINT_NOT_SIGNED' });
    expect(await verifyRecord({ ...input, origin: 'another.example/log' })).toMatchObject({ ok: false, code: 'CHECKPOINT_ORIGIN_MISMATCH' });
    expect(await verifyRecord(changed((i) => (i.inclusion.size = 10)))).toMatchObject({ ok: false, code: 'SIZE_MISMATCH' });
    expect(await verifyRecord({ ...input, verifierKey: flip(input.verifierKey, input.verifierKey.indexOf('+') + 2) })).toMatchObject({ ok: false, code: 'VERIFIER_KEY_MALFORMED' });
  });

  it('fails on a changed byte in an opening: value, salt or field', async () => {
    const value = await verifyRecord(changed((i) => (i.inclusion.proofs[0]!.openings[0]!.value = flip(SUBJECT, 0))));
    expect(value).toMatchObject({ ok: false, code: 'OPENING_MISMATCH', position: 5, field: 'subjectId' });
    const salt = await verifyRecord(changed((i) => (i.inclusion.proofs[1]!.openings[0]!.salt = flip(i.inclusion.proofs[1]!.openings[0]!.salt, 3, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'))));
    expect(salt).toMatchObject({ ok: false, code: 'OPENING_MISMATCH', position: 6, field: 'subjectId' });
    const field = await verifyRecord(changed((i) => (i.inclusion.proofs[0]!.openings[0]!.field = 'requesterCode')));
    expect(field).toMatchObject({ ok: false, code: 'OPENING_MISMATCH', field: 'requesterCode' });
  });

  it('fails on an envelope of another serial or position', async () => {
    const result = await verifyRecord(changed((i) => (i.inclusion.proofs = [{ ...i.inclusion.proofs[0]!, position: 6 }])));
    expect(result).toMatchObject({ ok: false, code: 'ENVELOPE_NOT_OF_SERIAL', position: 6 });
  });
});
