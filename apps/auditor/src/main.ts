#!/usr/bin/env node
import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { EventSealer, KEYRING_FILE, SealingError, SqliteKeyring, readSealingKeys } from '#sealing';
import { checkConsistency, type ConsistencyReport } from './consistency/check-consistency.js';
import { AuditorError } from './errors.js';
import { HubClient } from './hub-client.js';
import { proveSerial, verifyProofBundle } from './prove/proof-bundle.js';
import type { ProvisionRecord } from '#projections';
import { FOLDS, defaultFoldPath, replayFold, type FoldDiff, type FoldName } from './replay/replay-fold.js';
import { defaultProjectionsPath, replayProvisionRecords, type ProvisionRecordsDiff } from './replay/replay-provision-records.js';
import { replayTree } from './replay/replay-tree.js';
import { describeFinding } from './verify/findings.js';
import { type LogSource, type VerifyReport, verifyLog } from './verify/verify-log.js';

/** Exit codes: 0 verified, 1 the log (or proof) fails verification, 2 the command could not run. */
const EXIT_FAILED = 1;
const EXIT_ERROR = 2;

interface SourceOptions {
  readonly db?: string;
  readonly hub?: string;
  readonly kurrentdb?: string;
  readonly stream?: string;
  readonly tokenFile?: string;
}

function sourceOf(o: SourceOptions): LogSource {
  if ([o.db, o.hub, o.kurrentdb].filter((v) => v !== undefined).length !== 1) {
    throw new AuditorError('SOURCE_UNREADABLE', 'give exactly one of --db <ledger.sqlite>, --hub <url> or --kurrentdb <connection string>');
  }
  if (o.db !== undefined) return { kind: 'db', path: o.db };
  if (o.kurrentdb !== undefined) return { kind: 'kurrentdb', url: o.kurrentdb, ...(o.stream === undefined ? {} : { stream: o.stream }) };
  return { kind: 'hub', url: o.hub!, ...(o.tokenFile === undefined ? {} : { token: tokenFrom(o.tokenFile) }) };
}

/** The bearer token in a file: the hub's keys/auditor.token.json, or a file holding just the token. */
function tokenFrom(path: string): string {
  if (!existsSync(path)) throw new AuditorError('SOURCE_UNREADABLE', `no token file at ${path}`);
  const text = readFileSync(path, 'utf8').trim();
  if (!text.startsWith('{')) return text;
  const token = (JSON.parse(text) as { token?: unknown }).token;
  if (typeof token !== 'string') throw new AuditorError('SOURCE_UNREADABLE', `${path} holds no "token"`);
  return token;
}

/** A value given inline, or the contents of the file it names. */
function textOrFile(value: string): string {
  return existsSync(value) ? readFileSync(value, 'utf8').trim() : value.trim();
}

function printReport(report: VerifyReport): void {
  const out = process.stdout;
  out.write(`source:      ${report.source}\n`);
  out.write(`events:      ${report.events}\n`);
  out.write(`root:        ${report.rootHex ?? '(not computed: the log has a hole)'}\n`);
  const latest = report.checkpoints.latest;
  out.write(`checkpoints: ${report.checkpoints.verified} of ${report.checkpoints.seen} verified${latest ? `; latest size ${latest.size} at position ${latest.position}` : ''}\n`);
  if (report.openSerials.length > 0) {
    // Open at the head: a query still waiting for its provider, or a serial the hub voids at its next start.
    const shown = report.openSerials.slice(0, 10).map((o) => `${o.serial} (from position ${o.firstPosition})`);
    const more = report.openSerials.length > shown.length ? `, … ${report.openSerials.length - shown.length} more (see --json)` : '';
    out.write(`open:        ${report.openSerials.length} serial(s) not ended at the head of the log (not an error): ${shown.join(', ')}${more}\n`);
  }
  out.write(`time:        ${report.seconds.toFixed(2)} s (${Math.round(report.eventsPerSecond)} events/s)\n`);
  if (report.ok) {
    out.write('OK: every leaf, root, signature, position, revision and serial checks out, and every accepted query was lawful\n');
    return;
  }
  out.write(`FAILED: ${report.findingCount} finding(s); the first bad position:\n  ${describeFinding(report.firstFailure!)}\n`);
  for (const f of report.findings.slice(1, 20)) out.write(`  ${describeFinding(f)}\n`);
  if (report.findingCount > 20) out.write(`  … and ${report.findingCount - 20} more (see --json)\n`);
}

async function runVerify(o: SourceOptions & { verifierKey: string; origin?: string; checkpoint?: string[]; json?: boolean; threads?: string }): Promise<number> {
  const source = sourceOf(o);
  const bar = process.stderr.isTTY && !o.json ? new cliProgress.SingleBar({ format: 'verify [{bar}] {percentage}% | {value}/{total} events | {rate} events/s | ETA {eta_formatted}', hideCursor: true }, cliProgress.Presets.shades_classic) : undefined;
  const started = Date.now();
  let barStarted = false;
  const report = await verifyLog({
    source,
    verifierKey: textOrFile(o.verifierKey),
    ...(o.origin !== undefined ? { origin: o.origin } : {}),
    trustedCheckpoints: (o.checkpoint ?? []).map((f) => readFileSync(f, 'utf8')),
    ...(o.threads !== undefined ? { threads: Number(o.threads) } : {}),
    onProgress: (done, total) => {
      if (bar === undefined) return;
      if (!barStarted) {
        bar.start(total, 0, { rate: 0 });
        barStarted = true;
      }
      bar.update(done, { rate: Math.round(done / Math.max(0.001, (Date.now() - started) / 1000)) });
    },
  });
  bar?.stop();
  if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else printReport(report);
  return report.ok ? 0 : EXIT_FAILED;
}

async function runProve(o: SourceOptions & { serial: string; size?: string; out: string; verifierKey?: string; verifierKeys?: string }): Promise<number> {
  const source = sourceOf(o);
  const bundle = await proveSerial(source, o.serial, o.size === undefined ? undefined : Number(o.size));
  // With a key at hand, refuse to write a proof that would not verify (from a hub: with its key set, checked as a chain from the key).
  if (o.verifierKey !== undefined) {
    const keys = o.verifierKeys !== undefined ? textOrFile(o.verifierKeys) : source.kind === 'hub' ? await new HubClient(source.url).verifierKeys() : undefined;
    verifyProofBundle(bundle, textOrFile(o.verifierKey), undefined, keys);
  }
  writeFileSync(o.out, `${JSON.stringify(bundle, null, 2)}\n`);
  process.stdout.write(`wrote ${o.out}: ${bundle.events.length} event(s) of serial ${bundle.serial} against the checkpoint of size ${bundle.size}\n`);
  return 0;
}

async function runConsistency(older: string, newer: string, o: { verifierKey: string; verifierKeys?: string; origin?: string; hub?: string; proof?: string; json?: boolean }): Promise<number> {
  if ((o.hub === undefined) === (o.proof === undefined)) throw new AuditorError('SOURCE_UNREADABLE', 'give exactly one of --hub <url> (fetch the proof) or --proof <file> (a saved GET /v1/audit/proofs/consistency answer)');
  const report = await checkConsistency({
    olderFile: older,
    newerFile: newer,
    verifierKey: textOrFile(o.verifierKey),
    ...(o.verifierKeys === undefined ? {} : { verifierKeys: textOrFile(o.verifierKeys) }),
    ...(o.origin === undefined ? {} : { origin: o.origin }),
    proof: o.hub !== undefined ? { hub: o.hub } : { file: o.proof! },
  });
  if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    const out = process.stdout;
    const line = (label: string, c: ConsistencyReport['older']) =>
      out.write(`${label} ${c.file}${c.size === null ? '' : `: size ${c.size}, root ${c.rootHex}${c.timeMs === null ? '' : `, signed at ${new Date(c.timeMs).toISOString()}`}`}\n`);
    line('older:', report.older);
    line('newer:', report.newer);
    out.write(`proof:  ${report.proof.length} hash(es) from ${report.proofSource}\n`);
    const f = report.failure;
    if (f === null) out.write(`OK: the checkpoint of size ${report.older.size} is a prefix of the checkpoint of size ${report.newer.size} (RFC 9162 consistency proof verified)\n`);
    else out.write(`FAILED: ${f.code}: ${f.message}${f.expected !== null || f.calculated !== null ? `\n    expected:   ${String(f.expected)}\n    calculated: ${String(f.calculated)}` : ''}\n`);
  }
  return report.ok ? 0 : EXIT_FAILED;
}

async function runVerifyProof(file: string, o: { verifierKey: string; verifierKeys?: string; hub?: string; origin?: string; json?: boolean }): Promise<number> {
  let bundle: unknown;
  try {
    bundle = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new AuditorError('PROOF_FILE_MALFORMED', `cannot read ${file} as JSON: ${(error as Error).message}`);
  }
  const keys = o.verifierKeys !== undefined ? textOrFile(o.verifierKeys) : o.hub !== undefined ? await new HubClient(o.hub).verifierKeys() : undefined;
  const result = verifyProofBundle(bundle, textOrFile(o.verifierKey), o.origin, keys);
  if (o.json) process.stdout.write(`${JSON.stringify({ ok: true, ...result }, null, 2)}\n`);
  else {
    process.stdout.write(`OK: ${result.events.length} event(s) of serial ${result.serial} are in the log of size ${result.size} (root ${result.rootHex}, signed at ${result.timeMs === null ? 'unknown time' : new Date(result.timeMs).toISOString()} by key ${result.keyId})\n`);
    if (result.keys !== undefined && result.keys.length > 1) process.stdout.write(`  key chain: ${result.keys.join(' -> ')} (from the given key, each announced by the one before and handed over by a checkpoint both signed)\n`);
    for (const e of result.events) {
      process.stdout.write(`  position ${e.position}: ${e.type}${e.terminal ? ` (${e.terminal})` : ''}\n`);
      for (const o of e.opened) process.stdout.write(`    opened ${o.field}: ${JSON.stringify(o.value)} (matches the envelope's commitment)\n`);
    }
  }
  return 0;
}

/**
 * The supervisory auditor's opener: the hub's sealing key file (the read key) and its key ring, opened
 * read-only. Undefined without --key-file: projections folded from sealed fields are then skipped.
 */
function readKeyOf(o: { keyFile?: string; keyring?: string; db: string }): { sealer: EventSealer; close(): void } | undefined {
  if (o.keyFile === undefined) return undefined;
  if (!existsSync(o.keyFile)) throw new AuditorError('SOURCE_UNREADABLE', `no key file at ${o.keyFile}`);
  const ringPath = o.keyring ?? join(dirname(o.db), KEYRING_FILE);
  if (!existsSync(ringPath)) throw new AuditorError('SOURCE_UNREADABLE', `no key ring at ${ringPath}; give the hub's keyring.sqlite with --keyring`);
  try {
    // With the key-encryption keys rotations put beside the file (sealing-kek.<kid>.key.json): copy them with it.
    const keys = readSealingKeys(o.keyFile);
    const ring = new SqliteKeyring({ path: ringPath, keys, readonly: true });
    return { sealer: new EventSealer(keys, ring), close: () => ring.close() };
  } catch (error) {
    if (error instanceof SealingError || error instanceof SyntaxError) throw new AuditorError('SOURCE_UNREADABLE', `the read key does not open: ${error.message}`);
    throw error;
  }
}

async function runReplay(o: { db: string; projections?: string; registry?: string; notices?: string; keyFile?: string; keyring?: string; json?: boolean }): Promise<number> {
  const readKey = readKeyOf(o);
  const tree = replayTree(o.db);
  let records: ProvisionRecordsDiff;
  const folds: FoldDiff[] = [];
  try {
    records = await replayProvisionRecords(o.db, o.projections ?? defaultProjectionsPath(o.db), o.projections !== undefined, readKey?.sealer);
    const given: Record<FoldName, string | undefined> = { 'corporate-registry': o.registry, 'notice-inbox': o.notices };
    for (const name of Object.keys(FOLDS) as FoldName[]) folds.push(await replayFold(name, o.db, given[name] ?? defaultFoldPath(name, o.db), given[name] !== undefined, readKey?.sealer));
  } finally {
    readKey?.close();
  }
  const ok = tree.ok && records.ok && folds.every((f) => f.ok);
  if (o.json) process.stdout.write(`${JSON.stringify({ ok, projections: [tree, records, ...folds] }, null, 2)}\n`);
  else {
    process.stdout.write(`merkle-tree: rebuilt ${tree.rebuiltSize} of ${tree.liveSize} events; root live ${tree.liveRootHex} rebuilt ${tree.rebuiltRootHex}\n`);
    process.stdout.write(tree.ok ? 'OK: the rebuilt tree equals the live one\n' : `DIFFERS: ${tree.differingTiles.length} tile(s), ${tree.differingCheckpoints.length} checkpoint(s) differ\n`);
    printRecordsDiff(records);
    for (const f of folds) printFoldDiff(f);
  }
  return ok ? 0 : EXIT_FAILED;
}

function printFoldDiff(d: FoldDiff): void {
  const out = process.stdout;
  if (d.skipped !== undefined) {
    out.write(`${d.projection}: skipped (${d.skipped}: ${d.path})\n`);
    return;
  }
  out.write(`${d.projection}: ${d.path}: live ${d.liveRows} row(s) to position ${d.liveCheckpoint}; rebuilt ${d.rebuiltRows} to position ${d.rebuiltCheckpoint}; digest live ${d.liveDigest} rebuilt ${d.rebuiltDigest}\n`);
  if (d.ok) {
    out.write(`OK: the rebuilt ${d.projection} equals the live one\n`);
    return;
  }
  if (d.rebuiltCheckpoint !== d.liveCheckpoint) out.write(`DIFFERS: the log ends at position ${d.rebuiltCheckpoint}, before the live file's checkpoint ${d.liveCheckpoint}\n`);
  const f = d.firstDifference;
  if (f === null) return;
  out.write(`DIFFERS: ${d.differingRows} row(s); the first found, ${f.key}, in ${f.fields.join(', ')}:\n`);
  for (const field of f.fields) {
    const value = (r: Readonly<Record<string, unknown>> | null) => (r === null ? '(no row)' : JSON.stringify(r[field]));
    out.write(`  ${field}: live ${value(f.live)} rebuilt ${value(f.rebuilt)}\n`);
  }
}

function printRecordsDiff(d: ProvisionRecordsDiff): void {
  const out = process.stdout;
  if (d.skipped !== undefined) {
    out.write(`provision-records: skipped (${d.skipped}: ${d.path})\n`);
    return;
  }
  out.write(`provision-records: ${d.path}: live ${d.liveRecords} record(s) to position ${d.liveCheckpoint}; rebuilt ${d.rebuiltRecords} to position ${d.rebuiltCheckpoint}; digest live ${d.liveDigest} rebuilt ${d.rebuiltDigest}\n`);
  if ((d.shreddedSkipped ?? 0) > 0) out.write(`  ${d.shreddedSkipped} event(s) skipped: their keys were shredded (retention or erasure), as the hub forgot them\n`);
  if (d.ok) {
    out.write('OK: the rebuilt provision records equal the live ones\n');
    return;
  }
  if (d.rebuiltCheckpoint !== d.liveCheckpoint) out.write(`DIFFERS: the log ends at position ${d.rebuiltCheckpoint}, before the live projection's checkpoint ${d.liveCheckpoint}\n`);
  const f = d.firstDifference;
  if (f === null) return;
  out.write(`DIFFERS: ${d.differingRecords} record(s); the first, serial ${f.serial}, in ${f.fields.join(', ')}:\n`);
  for (const field of f.fields) {
    const value = (r: ProvisionRecord | null) => (r === null ? '(no record)' : JSON.stringify(r[field as keyof ProvisionRecord]));
    out.write(`  ${field}: live ${value(f.live)} rebuilt ${value(f.rebuilt)}\n`);
  }
}

export function auditorProgram(): Command {
  const program = new Command('auditor')
    .description("The linkage ledger's auditor: verifies the log from its raw events, proves and checks inclusion, checks consistency between checkpoints, replays projections.")
    .showHelpAfterError();
  const source = (c: Command) =>
    c.addOption(new Option('--db <ledger.sqlite>', 'read the log from a ledger file (read-only)').conflicts('hub'))
      .addOption(new Option('--hub <url>', "read the log from a hub's audit endpoints"))
      .addOption(new Option('--token-file <file>', "with --hub: the auditor's token (the hub's keys/auditor.token.json), or a citizen's or agency's for prove").conflicts('db'))
      .addOption(new Option('--kurrentdb <connection string>', 'read the log stream of a KurrentDB-backed ledger directly (kurrentdb://host:2113?tls=false)').conflicts(['db', 'hub']))
      .addOption(new Option('--stream <name>', 'with --kurrentdb: the log stream (default: linkage-ledger)'));
  source(program.command('verify'))
    .description('recompute every leaf and checkpoint root, check signatures, consistency, positions, revisions and serials (I1, I2, I3), and that every accepted query was lawful (I6)')
    .requiredOption('--verifier-key <text|file>', "the hub's verifier key (GET /v1/audit/verifier-key), or a file holding it")
    .option('--origin <origin>', 'checkpoint origin to accept (default: the verifier key name)')
    .option('--checkpoint <file...>', 'signed checkpoint notes kept from earlier audits: the log must still hold what they cover')
    .option('--threads <n>', 'hashing threads (default: one per core)')
    .option('--json', 'write the report as JSON on stdout')
    .action(async (o) => process.exit(await runVerify(o)));
  source(program.command('prove'))
    .description('write the inclusion proofs of every event of one serial against a signed checkpoint, verifiable offline')
    .requiredOption('--serial <serial>', 'the 20-digit processing serial number')
    .option('--size <n>', 'the checkpoint size (default: the first checkpoint covering the serial, or the latest from a hub)')
    .requiredOption('--out <proof.json>', 'where to write the proof')
    .option('--verifier-key <text|file>', 'check the proof before writing it (from --hub: with the hub\'s key set, checked as a chain from this key)')
    .option('--verifier-keys <json|file>', "with --verifier-key, after a key rotation: the hub's key set (GET /v1/audit/verifier-keys)")
    .action(async (o) => process.exit(await runProve(o)));
  program
    .command('verify-proof')
    .description('verify a proof file offline: checkpoint signature, then every inclusion proof, then every opening against its envelope')
    .argument('<proof.json>')
    .requiredOption('--verifier-key <text|file>', "the hub's verifier key (its first checkpoint key), or a file holding it")
    .addOption(new Option('--verifier-keys <json|file>', "after a key rotation: the hub's key set (GET /v1/audit/verifier-keys), checked as a chain from --verifier-key; the checkpoint is verified with the key for its size").conflicts('hub'))
    .option('--hub <url>', "after a key rotation: fetch the key set from the hub's GET /v1/audit/verifier-keys (checked the same way)")
    .option('--origin <origin>', 'checkpoint origin to accept (default: the verifier key name)')
    .option('--json', 'write the result as JSON')
    .action(async (file: string, o) => process.exit(await runVerifyProof(file, o)));
  program
    .command('consistency')
    .description('check a consistency proof between two signed checkpoints: both signatures, then that the older is a prefix of the newer (RFC 9162)')
    .argument('<older.note>', 'the older signed checkpoint note (GET /v1/audit/checkpoint, kept from an earlier audit)')
    .argument('<newer.note>', 'the newer signed checkpoint note')
    .requiredOption('--verifier-key <text|file>', "the hub's verifier key, or a file holding it")
    .option('--verifier-keys <json|file>', "after a key rotation: the hub's key set (GET /v1/audit/verifier-keys), checked as a chain from --verifier-key")
    .option('--origin <origin>', 'checkpoint origin to accept (default: the verifier key name)')
    .addOption(new Option('--hub <url>', "fetch the proof from a hub's GET /v1/audit/proofs/consistency").conflicts('proof'))
    .option('--proof <proof.json>', 'read the proof from a file holding that answer ({ from, to, proof })')
    .option('--json', 'write the result as JSON')
    .action(async (older: string, newer: string, o) => process.exit(await runConsistency(older, newer, o)));
  program
    .command('replay')
    .description('rebuild projections from the log into fresh stores and diff them with the live ones: the Merkle tree (root, every tile, the checkpoint index), the provision records, the corporate registry and the notice inbox (every row, first difference named)')
    .requiredOption('--db <ledger.sqlite>', 'the live ledger file')
    .option('--projections <projections.sqlite>', "the hub's live projections file (default: projections.sqlite beside the ledger; skipped when absent there)")
    .option('--registry <corporate-registry.sqlite>', "the hub's live corporate registry (default: corporate-registry.sqlite beside the ledger; skipped when absent there)")
    .option('--notices <notices.sqlite>', "the hub's live notice inbox (default: notices.sqlite beside the ledger; skipped when absent there)")
    .option('--key-file <sealing.key.json>', "the hub's read key (keys/sealing.key.json, with the sealing-kek.*.key.json files beside it after a key-encryption key rotation): opens the sealed fields the provision records and the notice inbox are folded from; without it they are skipped")
    .option('--keyring <keyring.sqlite>', "with --key-file: the hub's key ring (default: keyring.sqlite beside the ledger), opened read-only")
    .option('--json', 'write the diff as JSON')
    .action(async (o) => process.exit(await runReplay(o)));
  return program;
}

auditorProgram()
  .parseAsync(process.argv)
  .catch((error: unknown) => {
    const code = error instanceof AuditorError ? error.code : 'INTERNAL';
    process.stderr.write(`auditor: ${code}: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(error instanceof AuditorError && error.code === 'PROOF_INVALID' ? EXIT_FAILED : EXIT_ERROR);
  });
