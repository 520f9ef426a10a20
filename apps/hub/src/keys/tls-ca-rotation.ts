import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import type { EventStore } from '#ledger';
import { HubConfig } from '../config/hub-config.js';
import { HubProblem } from '../http/hub-problem.js';
import type { Leadership } from '../leadership/leadership.js';
import { LEADERSHIP } from '../leadership/tokens.js';
import { CLOCK, EVENT_STORE, type Clock } from '../ledger/tokens.js';
import { HubCertificateAuthority, createRotatedCa, type CaMaterial } from '../tls/hub-ca.js';
import { HubTls, TLS_CA_KEY_ROTATED, TLS_CA_STREAM, readTlsCaRotations, type TlsCaKeyRotatedData } from '../tls/hub-tls.js';
import { AnnouncedRotations, appendRotation, type RotationMetadata } from './rotation.js';

/** How long certificates of the previous CA stay accepted after a rotation, unless the command says. */
export const DEFAULT_OVERLAP_DAYS = 30;
const DAY_MS = 86_400_000;
/** setTimeout's longest delay; a later overlap end is waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The answer to a rotation: the event's data, where the log recorded it. */
export interface TlsCaRotation extends TlsCaKeyRotatedData {
  readonly position: number;
  readonly serial: string;
}

/**
 * The rotation of the hub's TLS CA key (docs/key-rotation.md, docs/tls.md): the command, and the CA the
 * hub uses after the log's rotations (at start, on takeover, and when an overlap ends: the trust bundle
 * then drops the previous CA).
 */
@Injectable()
export class TlsCaRotations extends AnnouncedRotations implements OnModuleDestroy {
  readonly #logger = new Logger('Tls');
  #timer: NodeJS.Timeout | undefined;

  constructor(
    config: HubConfig,
    @Inject(EVENT_STORE) store: EventStore,
    @Inject(CLOCK) clock: Clock,
    @Inject(LEADERSHIP) leadership: Leadership | null,
    private readonly tls: HubTls,
  ) {
    // The previous leader may have rotated: `load` (at start and on takeover) uses the newest CA the log announces.
    super(config, store, clock, leadership);
  }

  onModuleDestroy(): void {
    clearTimeout(this.#timer);
  }

  /**
   * Uses the CA the log's rotations give now (the newest whose file this hub holds; the previous ones
   * trusted until their overlap ends), if it differs from the one in use, and waits for the next overlap end.
   */
  async load(): Promise<void> {
    const current = this.tls.ca;
    if (current === undefined) return;
    const { rotations } = await readTlsCaRotations(this.store);
    const next = await HubCertificateAuthority.withRotations(this.config.keysDir, this.config.tls.hostNames, rotations, this.clock());
    const announced = rotations.at(-1)?.caFingerprint;
    if (announced !== undefined && next.caFingerprint !== announced) {
      this.#logger.error(`the log announces TLS CA ${announced}, whose file is not in ${this.config.keysDir}; issuing with ${next.caFingerprint}`);
    }
    if (next.caFingerprint !== current.caFingerprint || next.trustBundlePem !== current.trustBundlePem || next.hub.certificatePem !== current.hub.certificatePem) {
      this.tls.use(next);
      this.#logger.log(`TLS CA in use: ${next.caFingerprint} (${this.config.keysDir}/tls-ca.bundle.pem trusted)`);
    }
    this.#schedule(next.nextChangeAt);
  }

  #schedule(at: Date | undefined): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (at === undefined) return;
    const wait = Math.max(0, at.getTime() - this.clock().getTime());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (wait > MAX_TIMER_MS) return this.#schedule(at);
      this.load().catch((error: unknown) => this.#logger.error(`the TLS CA's overlap ended, but the trust bundle could not be renewed: ${String(error)}`));
    }, Math.min(wait + 50, MAX_TIMER_MS));
    this.#timer.unref();
  }

  /**
   * Rotates the TLS CA key (operator command): a new CA is stored in the keys dir (0600, exclusively),
   * announced by a public TlsCaKeyRotated event (its own serial), then used at once: it issues every
   * agency certificate and the hub's own, and the previous CA stays trusted for `overlapDays`.
   */
  rotate(overlapDays: number, metadata: RotationMetadata): Promise<TlsCaRotation> {
    if (this.tls.ca === undefined) throw new HubProblem('TLS_NOT_ENABLED', 'the hub runs with HUB_TLS=off: it has no TLS CA to rotate (docs/tls.md)');
    return this.command('the TLS CA key', () => this.#rotate(overlapDays, metadata));
  }

  async #rotate(overlapDays: number, metadata: RotationMetadata): Promise<TlsCaRotation> {
    const { rotations, revision } = await readTlsCaRotations(this.store);
    const now = this.clock();
    // The CA in use, as the log gives it: the new one is certified by it (the cross certificate).
    const before = await HubCertificateAuthority.withRotations(this.config.keysDir, this.config.tls.hostNames, rotations, now);
    const previous: CaMaterial = before.material;
    const next = await createRotatedCa(this.config.keysDir, previous, now);
    const data: TlsCaKeyRotatedData = {
      caFingerprint: next.fingerprint,
      caSubject: next.subject,
      caSerialNumber: next.serialNumber,
      previousCaFingerprint: before.caFingerprint,
      overlapEndsAt: new Date(now.getTime() + overlapDays * DAY_MS).toISOString(),
      rotatedAt: now.toISOString(),
    };
    const result = await appendRotation(this.store, TLS_CA_STREAM, TLS_CA_KEY_ROTATED, data, revision ?? 'no_stream', metadata);
    // Announced (durable): it issues from now on, and the hub serves a certificate it issued.
    const after = await HubCertificateAuthority.withRotations(this.config.keysDir, this.config.tls.hostNames, [...rotations, data], now);
    this.tls.use(after);
    this.#schedule(after.nextChangeAt);
    this.#logger.log(`TLS CA rotated: ${data.previousCaFingerprint} -> ${data.caFingerprint} (announced at ${result.firstPosition}); the previous CA is trusted until ${data.overlapEndsAt}`);
    return { ...data, position: result.firstPosition, serial: result.serial };
  }
}
