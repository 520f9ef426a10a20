/**
 * The auditor's `verify` over a 1,000,000-event log: the log is written with a bare better-sqlite3
 * transaction (canonical envelopes exactly as the ledger stores them, real signed checkpoints every
 * 100,000 events, the authorization table published first and one QueryAccepted with the hub's clear
 * fields in every three events), then verifyLog reads, hashes and checks all of it, the lawfulness of
 * each accepted query included, in several rounds over the same file (the median is the figure: one
 * round on a shared machine can be a second off). Last line: one JSON object.
 *   npm run bench:audit [-- --events 1000000 --checkpoint-every 100000 --threads 2 --rounds 3]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatVerifierKey, publicKeyOf } from '#audit-log';
import { defaultCheckpointOrigin } from '#ledger';
import { verifyLog } from '../apps/auditor/src/verify/verify-log.js';
import { writeSyntheticLog } from './support/synthetic-log.js';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '1000000' },
    'checkpoint-every': { type: 'string', default: '100000' },
    threads: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    keep: { type: 'boolean', default: false },
  },
});
const EVENTS = Number(values.events);
const EVERY = Number(values['checkpoint-every']);
const dir = mkdtempSync(join(tmpdir(), 'bench-audit-'));
const path = join(dir, 'ledger.sqlite');
const origin = defaultCheckpointOrigin(1);
// A fixed bench key (never a real one), so a kept log can be verified again with the CLI.
const key = { privateKey: new Uint8Array(32).fill(7), publicKey: publicKeyOf(new Uint8Array(32).fill(7)) };
const verifierKey = formatVerifierKey({ name: origin, publicKey: key.publicKey });

try {
  const built = writeSyntheticLog({ path, events: EVENTS, checkpointEvery: EVERY, origin, privateKey: key.privateKey });
  console.log(`built a ${EVENTS.toLocaleString('en')}-event log (${(built.bytes / 1e6).toFixed(0)} MB of envelopes, ${built.checkpoints} signed checkpoints) in ${built.seconds.toFixed(1)} s`);
  const threads = values.threads === undefined ? undefined : Number(values.threads);
  const rounds = Math.max(1, Number(values.rounds));
  const seconds: number[] = [];
  let report: Awaited<ReturnType<typeof verifyLog>> | undefined;
  for (let round = 1; round <= rounds; round++) {
    report = await verifyLog({ source: { kind: 'db', path }, verifierKey, ...(threads !== undefined ? { threads } : {}) });
    if (!report.ok) {
      console.error(`verify FAILED on a log that should be valid: ${JSON.stringify(report.firstFailure)}`);
      process.exitCode = 1;
      break;
    }
    seconds.push(report.seconds);
    console.log(`round ${round}: verified ${report.events.toLocaleString('en')} events, ${report.checkpoints.verified}/${report.checkpoints.seen} checkpoints, in ${report.seconds.toFixed(2)} s`);
  }
  if (report !== undefined && report.ok) {
    const median = [...seconds].sort((a, b) => a - b)[Math.floor(seconds.length / 2)]!;
    const rate = report.events / median;
    console.log(`verify: ${report.events.toLocaleString('en')} events, root ${report.rootHex}`);
    console.log(`verify, median of ${seconds.length}: ${median.toFixed(2)} s, ${Math.round(rate).toLocaleString('en')} events/s (bar: ≤ 5 s for 1,000,000)${report.events >= 1_000_000 ? `: ${median <= 5 * (report.events / 1_000_000) ? 'met' : 'NOT met'}` : ''}`);
    console.log(JSON.stringify({ bench: 'audit-verify', events: report.events, rounds: seconds.length, seconds: Number(median.toFixed(3)), rounds_seconds: seconds.map((s) => Number(s.toFixed(3))), events_per_s: Math.round(rate) }));
  }
} finally {
  if (!values.keep) rmSync(dir, { recursive: true, force: true });
  else console.error(`kept ${path}; verifier key ${verifierKey}`);
}
