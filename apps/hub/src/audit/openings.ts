import { Injectable } from '@nestjs/common';
import type { RecordedEvent } from '#ledger';
import { isSelfInformation } from '#linkage';
import { EventSealer, type FieldOwner, type Opening } from '#sealing';
import type { Principal } from '../linkage/authenticator.js';

/** The parties of one serial, as its events name them (agencies in clear, the person once opened). */
interface Parties {
  subjectId?: string;
  requesterAgencyId?: string;
  providerAgencyId?: string;
  agencyId?: string;
}

/**
 * Openings (I10): for each stored event of a serial, the opening of exactly the fields the caller is a
 * party to (the citizen: their own subject; the requester and provider of a query: their own codes; the
 * agency of an agency-code or notice event: its own fields). Nobody is given another party's field, the
 * public and the auditor none: they verify the log without them.
 */
@Injectable()
export class Openings {
  constructor(private readonly sealer: EventSealer) {}

  /** Openings per stored envelope (same order); empty lists for the anonymous and the auditor. */
  forSerial(principal: Principal, envelopes: readonly string[]): Opening[][] {
    if (principal.kind !== 'citizen' && principal.kind !== 'agency') return envelopes.map(() => []);
    const stored = envelopes.map((text) => JSON.parse(text) as RecordedEvent);
    const opened = stored.map((e) => this.sealer.open(e).event.data as Record<string, unknown>);
    const parties: Parties = {};
    for (const d of opened) {
      for (const k of ['subjectId', 'requesterAgencyId', 'providerAgencyId', 'agencyId'] as const) {
        const v = d[k];
        if (typeof v === 'string' && parties[k] === undefined) parties[k] = v;
      }
    }
    const roles = new Set<FieldOwner>();
    if (principal.kind === 'citizen' && parties.subjectId === principal.subjectId) {
      roles.add('citizen');
      // A self-information request (自己情報表示): the person is its requester, so the requester's fields (the answer key, the answer's digest) are theirs.
      if (opened.some(isSelfInformation)) roles.add('requester');
    }
    if (principal.kind === 'agency') {
      if (parties.requesterAgencyId === principal.agencyId) roles.add('requester');
      if (parties.providerAgencyId === principal.agencyId) roles.add('provider');
      if (parties.agencyId === principal.agencyId) roles.add('agency');
    }
    if (roles.size === 0) return envelopes.map(() => []);
    return stored.map((e) => this.sealer.openings(e, roles));
  }
}
