import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { leafHash, toHex } from '#audit-log';
import { VerifiedMark, checkStoredLog, storedLogFinding, type StoredLogFinding } from '#ledger';
import { checkLogThroughPort } from '#ledger/tree/port-log-check';
import { HubConfig } from '../config/hub-config.js';
import type { Leadership } from '../leadership/leadership.js';
import { LEADERSHIP } from '../leadership/tokens.js';
import { loadCheckpointPublicKeys } from './audit-keys.js';
import { KURRENT_VERIFIED_MARK_FILE, KurrentVerifiedMark, type PortMark } from './kurrent-verified-mark.js';

/** start: before the hub serves; scrub: the leaves below the mark, right after start; requested: the operator's. */
export type SelfCheckRunKind = 'start' | 'scrub' | 'requested';
export type SelfCheckRunStatus = 'running' | 'passed' | 'failed' | 'error' | 'stopped';

/** One run of the self-check, as the status endpoint shows it. */
export interface SelfCheckRun {
  readonly id: string;
  readonly kind: SelfCheckRunKind;
  readonly status: SelfCheckRunStatus;
  /** Leaves re-hashed by this run: [from, to). */
  readonly from: number;
  readonly to: number;
  readonly checked: number;
  readonly total: number;
  /** Signed checkpoints whose signature and root it checked. */
  readonly checkpoints: number;
  readonly startedAt: string;
  readonly finishedAt?: string;
  readonly seconds?: number;
  /** The first findings in position order; `findingCount` counts them all. */
  readonly findings: readonly StoredLogFinding[];
  readonly findingCount: number;
  /** Why the run could not finish (status error or stopped). */
  readonly error?: string;
  /**
   * Only on KurrentDB, where the check is reduced: `checkpoints-through-port`, the stored texts read
   * through the event-store port re-hashed against the signed checkpoints (see `note`).
   */
  readonly scope?: 'checkpoints-through-port';
  readonly note?: string;
}

/** What a run on KurrentDB says of its reduced scope. */
export const PORT_CHECK_NOTE =
  'reduced self-check (the log is on KurrentDB): every stored text read through the event-store port is re-hashed and every signed checkpoint verified against the root the texts make at its size; a changed event is found below a signed checkpoint but not located to its leaf (auditor verify --kurrentdb locates it), events after the last checkpoint are not judged; a start run reads the log from the verified mark on (a longer log than HUB_SELF_CHECK_FULL_MAX_EVENTS), the rest by a scrub right after start';

/**
 * The hub's verdict on its own log, as readiness shows it. `failed` and `unverified` make the hub not
 * ready and stop the checkpoint signer; `running` (a scrub or a requested run while the verdict is
 * sound) does not.
 */
export interface SelfCheckView {
  readonly status: 'off' | 'unverified' | 'running' | 'passed' | 'failed';
  /** The verified mark: leaves [0, verifiedThrough) were re-hashed and found equal. */
  readonly verifiedThrough: number;
  /** The run in progress, or else the last one. */
  readonly run?: SelfCheckRunKind;
  readonly runId?: string;
  readonly checked?: number;
  readonly total?: number;
  /** The first bad position found (status failed). */
  readonly finding?: StoredLogFinding;
  readonly findingCount?: number;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type Verdict = 'off' | 'unverified' | 'passed' | 'failed';

const KEPT_RUNS = 20;

/**
 * The hub checks its own log (I3): the stored envelope texts against the leaf hashes its tree stored
 * when they were written, the tiles against each other, the roots at the signed checkpoints' sizes
 * against the signed roots, and the tree's current root (`checkStoredLog`).
 *
 * At start, inside `app.init()` (so before the hub listens): a log of at most
 * `HUB_SELF_CHECK_FULL_MAX_EVENTS` events is checked whole; a longer one from the verified mark, and the
 * leaves below the mark by a scrub at the lowest CPU priority right after start. The operator asks for
 * a whole check at any time (`request`). A finding is final for the life of the process: the hub then
 * MUST NOT sign another checkpoint (`allowsSigning`) and is not ready, but keeps serving reads.
 */
@Injectable()
export class SelfCheckService implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('SelfCheck');
  private readonly threads = Math.max(1, Math.min(availableParallelism(), 4));
  private mark: VerifiedMark | undefined;
  /** On KurrentDB: the verified mark's file, the mark a start run resumes from, and the frontier of the last run that passed. */
  private portMark: KurrentVerifiedMark | undefined;
  private resumeFrom: PortMark | undefined;
  private portFrontier: PortMark | undefined;
  private verified = 0;
  private verdict: Verdict;
  private finding: { finding: StoredLogFinding; count: number } | undefined;
  private readonly logged = new Set<string>();
  private readonly runs = new Map<string, Mutable<SelfCheckRun>>();
  private current: { run: Mutable<SelfCheckRun>; abort: AbortController; done: Promise<void> } | undefined;
  private last: Mutable<SelfCheckRun> | undefined;
  /** A requested run waiting for the scrub it stopped to end. */
  private queued: Mutable<SelfCheckRun> | undefined;
  /** The leaves below the start run's range, for the scrub: [0, scrubTo). */
  private scrubTo = 0;
  private stopping = false;

  constructor(
    private readonly config: HubConfig,
    @Inject(LEADERSHIP) private readonly leadership: Leadership | null,
  ) {
    // Only the public halves are used, read at each run (a rotation adds one): every CheckpointSigned note in
    // the log MUST verify with one of the hub's checkpoint keys.
    loadCheckpointPublicKeys(config.keysDir);
    this.verdict = config.selfCheck.atStart ? 'unverified' : 'off';
  }

  /** Blocks the start until the leaves since the mark (or all of them) are checked: the hub serves nothing before. */
  async onModuleInit(): Promise<void> {
    if (this.leadership !== null) {
      await this.startThroughPort(this.leadership);
      return;
    }
    // The store (EVENT_STORE, instantiated before any init hook) has created the ledger file.
    this.mark = new VerifiedMark(this.config.ledgerPath);
    this.verified = this.mark.get();
    if (!this.config.selfCheck.atStart) {
      this.logger.log('the self-check at start is off (HUB_SELF_CHECK=off); POST /v1/audit/self-checks runs one');
      return;
    }
    const head = this.mark.logHead();
    if (this.verified > head) {
      const run = this.newRun('start', head, head);
      const finding = storedLogFinding({ check: 'mark', code: 'LOG_SHORTER_THAN_MARK', position: head, serial: null, expected: this.verified, calculated: head });
      this.finish(run, 'failed', { findings: [finding], findingCount: 1 });
      return;
    }
    const whole = head <= this.config.selfCheck.fullMaxEvents;
    const run = this.newRun('start', whole ? 0 : this.verified, head);
    await this.execute(run, false);
    if (!whole && run.status === 'passed' && run.from > 0) this.scrubTo = run.from;
  }

  /**
   * KurrentDB: no ledger file; the reduced check reads the log through the port. Its verified mark is kept
   * in a file of its own (kurrent-verified-mark.ts): a log longer than HUB_SELF_CHECK_FULL_MAX_EVENTS is
   * checked from the mark at start and below it by a scrub right after, as on the SQLite path. A mark whose
   * last leaf is not the log's (another log under the same stream name) is dropped: the whole log is checked.
   */
  private async startThroughPort(leadership: Leadership): Promise<void> {
    const logStream = this.config.eventStore.kind === 'kurrentdb' ? this.config.eventStore.logStream : 'linkage-ledger';
    this.portMark = new KurrentVerifiedMark(join(this.config.dataDir, KURRENT_VERIFIED_MARK_FILE), logStream);
    const saved = this.portMark.get();
    this.verified = saved?.size ?? 0;
    if (!this.config.selfCheck.atStart) {
      this.logger.log('the self-check at start is off (HUB_SELF_CHECK=off); POST /v1/audit/self-checks runs one');
      return;
    }
    const head = await leadership.store.head();
    if (saved !== undefined && saved.size > head) {
      const run = this.newRun('start', head, head);
      const finding = storedLogFinding({ check: 'mark', code: 'LOG_SHORTER_THAN_MARK', position: head, serial: null, expected: saved.size, calculated: head });
      this.finish(run, 'failed', { findings: [finding], findingCount: 1 });
      return;
    }
    if (saved !== undefined && head > this.config.selfCheck.fullMaxEvents) {
      const [text] = await leadership.store.storedTexts(saved.size - 1, 1);
      if (text !== undefined && toHex(leafHash(text)) === saved.lastLeafHex) this.resumeFrom = saved;
      else {
        this.logger.warn(`the verified mark (${saved.size} events) is not of this log: checking the whole log`);
        this.verified = 0;
        this.portMark.clear();
      }
    }
    const run = this.newRun('start', this.resumeFrom?.size ?? 0, head);
    await this.execute(run, false);
    if (this.resumeFrom !== undefined && run.status === 'passed' && run.from > 0) this.scrubTo = run.from;
    this.resumeFrom = undefined;
  }

  /** Right after start: the scrub of the leaves below the start run's range, at the lowest priority. */
  onApplicationBootstrap(): void {
    if (this.scrubTo === 0) return;
    const run = this.newRun('scrub', 0, this.scrubTo);
    this.launch(run, true);
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    const current = this.current;
    if (current === undefined) return;
    current.abort.abort();
    await current.done;
  }

  onApplicationShutdown(): void {
    this.mark?.close();
    this.mark = undefined;
    this.portMark?.close();
    this.portMark = undefined;
  }

  /** True while the verdict lets the checkpoint signer sign: checked and sound, or the start check is off. */
  get allowsSigning(): boolean {
    return this.verdict === 'passed' || this.verdict === 'off';
  }

  /** What readiness reports. */
  view(): SelfCheckView {
    const run = this.current?.run ?? this.last;
    const status = this.verdict === 'failed' || this.verdict === 'unverified' ? this.verdict : this.current !== undefined ? 'running' : this.verdict;
    return {
      status,
      verifiedThrough: this.verified,
      ...(run === undefined ? {} : { run: run.kind, runId: run.id, checked: run.checked, total: run.total }),
      ...(this.finding === undefined ? {} : { finding: this.finding.finding, findingCount: this.finding.count }),
    };
  }

  /** A run by id (the last 20 are kept). */
  run(id: string): SelfCheckRun | undefined {
    const run = this.runs.get(id);
    return run === undefined ? undefined : { ...run };
  }

  /** The runs kept, newest first. */
  list(): SelfCheckRun[] {
    return [...this.runs.values()].reverse().map((r) => ({ ...r }));
  }

  /**
   * The operator's whole check, [0, head), at the lowest priority beside live traffic. A requested run in
   * progress is answered instead of a second; a scrub in progress is stopped first (this run covers it).
   */
  request(): SelfCheckRun {
    if (this.queued !== undefined) return { ...this.queued };
    const current = this.current;
    if (current !== undefined && current.run.kind !== 'scrub') return { ...current.run };
    const head = this.mark?.logHead() ?? 0;
    const run = this.newRun('requested', 0, head);
    if (current !== undefined) {
      this.queued = run;
      current.abort.abort(`superseded by the requested run ${run.id}`);
      void current.done.then(() => {
        this.queued = undefined;
        this.launch(run, true);
      });
    } else {
      this.launch(run, true);
    }
    return { ...run };
  }

  /** The hub's checkpoint keys as the checks take them: the first, and those rotated to since (read at each run). */
  private checkpointKeys(): { publicKey: Uint8Array; rotatedPublicKeys: Uint8Array[] } {
    const [publicKey, ...rotatedPublicKeys] = loadCheckpointPublicKeys(this.config.keysDir);
    return { publicKey: publicKey!, rotatedPublicKeys };
  }

  private newRun(kind: SelfCheckRunKind, from: number, to: number): Mutable<SelfCheckRun> {
    const run: Mutable<SelfCheckRun> = { id: randomUUID(), kind, status: 'running', from, to, checked: 0, total: Math.max(0, to - from), checkpoints: 0, startedAt: new Date().toISOString(), findings: [], findingCount: 0 };
    if (this.leadership !== null) Object.assign(run, { scope: 'checkpoints-through-port', note: PORT_CHECK_NOTE });
    this.runs.set(run.id, run);
    for (const id of this.runs.keys()) {
      if (this.runs.size <= KEPT_RUNS) break;
      this.runs.delete(id);
    }
    return run;
  }

  /** Runs in the background; its outcome is in the run and the verdict, never a rejection. */
  private launch(run: Mutable<SelfCheckRun>, lowPriority: boolean): void {
    if (this.stopping) {
      this.finish(run, 'stopped', { error: 'the hub is shutting down' });
      return;
    }
    void this.execute(run, lowPriority);
  }

  private async execute(run: Mutable<SelfCheckRun>, lowPriority: boolean): Promise<void> {
    const abort = new AbortController();
    let settle!: () => void;
    const done = new Promise<void>((resolve) => (settle = resolve));
    this.current = { run, abort, done };
    this.logger.log(`self-check (${run.kind}, run ${run.id}): re-hashing events [${run.from}, ${run.to}) against the stored tree${lowPriority ? ' at low priority' : ''}`);
    try {
      const report = this.leadership !== null ? await this.checkThroughPort(this.leadership, run, abort.signal, lowPriority) : await checkStoredLog({
        path: this.config.ledgerPath,
        ...this.checkpointKeys(),
        from: run.from,
        // A start or requested run goes to the tree's size when it begins; a scrub stops at the range the start run took.
        ...(run.kind === 'scrub' ? { to: run.to } : {}),
        threads: this.threads,
        lowPriority,
        signal: abort.signal,
        onProgress: (checked, total) => {
          run.checked = checked;
          run.total = total;
        },
      });
      Object.assign(run, { from: report.from, to: report.to, total: report.to - report.from, checked: report.checked, checkpoints: report.checkpoints });
      this.finish(run, report.findingCount > 0 ? 'failed' : 'passed', { findings: report.findings, findingCount: report.findingCount });
    } catch (error) {
      if (abort.signal.aborted) this.finish(run, 'stopped', { error: String(abort.signal.reason ?? 'stopped') });
      else this.finish(run, 'error', { error: (error as Error).message });
    } finally {
      if (this.current?.run === run) this.current = undefined;
      settle();
    }
  }

  /** The reduced check of a log on KurrentDB (see PORT_CHECK_NOTE). */
  private async checkThroughPort(leadership: Leadership, run: Mutable<SelfCheckRun>, signal: AbortSignal, lowPriority: boolean) {
    const store = leadership.store;
    // A scrub stops at the range the start run took; a start run resumes from the verified mark when it may.
    const head = run.kind === 'scrub' ? run.to : await store.head();
    const resume = run.kind === 'start' ? this.resumeFrom : undefined;
    const from = resume?.size ?? 0;
    Object.assign(run, { from, to: head, total: head - from });
    let last: string | undefined;
    const report = await checkLogThroughPort({
      texts: async (at, count) => {
        const texts = await store.storedTexts(at, count);
        if (texts.length > 0) last = texts[texts.length - 1];
        return texts;
      },
      head,
      ...(resume === undefined ? {} : { resume }),
      ...this.checkpointKeys(),
      signal,
      // A run beside live traffic reads smaller pages and yields between them.
      pageSize: lowPriority ? 1024 : 4096,
      onProgress: (checked, total) => {
        run.checked = checked;
        run.total = total;
      },
    });
    // What the mark becomes if this run moves it: the re-hashed leaves [0, to) and the last one's hash.
    if (last !== undefined && report.to > 0) this.portFrontier = { size: report.to, frontier: report.frontier, lastLeafHex: toHex(leafHash(last)) };
    else if (resume !== undefined && report.to === resume.size) this.portFrontier = resume;
    return report;
  }

  private finish(run: Mutable<SelfCheckRun>, status: SelfCheckRunStatus, outcome: { findings?: readonly StoredLogFinding[]; findingCount?: number; error?: string }): void {
    run.status = status;
    run.findings = outcome.findings ?? [];
    run.findingCount = outcome.findingCount ?? 0;
    if (outcome.error !== undefined) run.error = outcome.error;
    run.finishedAt = new Date().toISOString();
    run.seconds = (Date.parse(run.finishedAt) - Date.parse(run.startedAt)) / 1000;
    this.last = run;
    const what = `self-check (${run.kind}, run ${run.id})`;
    switch (status) {
      case 'passed':
        // The mark moves only over a contiguous range from below it: [0, mark) ∪ [from, to).
        if (run.from <= this.verified && run.to > this.verified) this.setMark(run.to);
        if (this.verdict === 'unverified' || (this.verdict === 'off' && run.kind === 'requested' && run.from === 0)) this.verdict = 'passed';
        this.logger.log(`${what} passed: ${run.checked} events re-hashed and ${run.checkpoints} signed checkpoint(s) verified in ${run.seconds.toFixed(2)} s; verified through ${this.verified}`);
        return;
      case 'failed':
        this.fail(run);
        return;
      case 'error':
        // A run that could not finish proves nothing either way: at start, the hub stays unverified.
        this.logger.error(`${what} could not finish: ${run.error ?? ''}`);
        return;
      case 'stopped':
        this.logger.log(`${what} stopped: ${run.error ?? ''}`);
        return;
      case 'running':
        return;
    }
  }

  private fail(run: Mutable<SelfCheckRun>): void {
    const first = run.findings[0]!;
    const wasFailed = this.verdict === 'failed';
    this.verdict = 'failed';
    if (!wasFailed) this.finding = { finding: first, count: run.findingCount };
    // The next start re-checks the bad position before serving; a shortened log keeps its mark as evidence.
    if (first.code !== 'LOG_SHORTER_THAN_MARK' && (first.position ?? 0) < this.verified) this.setMark(first.position ?? 0);
    const key = `${first.code}@${first.position ?? '-'}`;
    if (this.logged.has(key)) return;
    this.logged.add(key);
    // Positions, serials and hashes only: nothing of an event's data is logged.
    const where = first.position === null ? 'the log' : `position ${first.position}${first.serial === null ? '' : ` (serial ${first.serial})`}`;
    this.logger.error(
      `self-check (${run.kind}, run ${run.id}) found the stored log altered: ${first.code} at ${where}, ${first.check} check: expected ${String(first.expected)}, calculated ${String(first.calculated)}; ${run.findingCount} finding(s). ` +
        'The hub signs no further checkpoint and /health/ready answers 503 until it is restarted on a sound ledger file.',
    );
  }

  private setMark(size: number): void {
    this.verified = size;
    try {
      this.mark?.set(size);
      if (this.portMark !== undefined) {
        // Only a frontier of exactly this size can be resumed from; anything else clears the mark.
        const frontier = this.portFrontier;
        if (frontier !== undefined && frontier.size === size) this.portMark.set(frontier);
        else this.portMark.clear();
      }
    } catch (error) {
      // Only a hint for the next start (which then re-hashes more); never a reason to stop.
      this.logger.warn(`could not store the verified mark ${size}: ${(error as Error).message}`);
    }
  }
}
