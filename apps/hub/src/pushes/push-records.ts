import { Injectable } from '@nestjs/common';
import { LinkageViews } from '../linkage/linkage-views.js';
import { PushProjection } from './push-projection.js';
import type { PushPage, StoredPush } from './push-store.js';
import type { PushRecordResponse, PushRecordsResponse } from './pushes.dto.js';

/**
 * Pushes as the records show them (情報提供等記録): an agency's (as subscriber, provider or both) and a
 * person's, newest first, with the agencies' registered names. No code and no subject id is ever shown.
 */
@Injectable()
export class PushRecords {
  constructor(
    private readonly projection: PushProjection,
    private readonly views: LinkageViews,
  ) {}

  async agency(agencyId: string, options: { role?: 'subscriber' | 'provider'; limit?: number; after?: string }): Promise<PushRecordsResponse> {
    const store = await this.projection.current();
    return this.#page(store.agencyPushes(agencyId, options));
  }

  async citizen(subjectId: string, options: { limit?: number; after?: string }): Promise<PushRecordsResponse> {
    const store = await this.projection.current();
    return this.#page(store.personPushes(this.projection.personRef(subjectId), options));
  }

  #page(page: PushPage): PushRecordsResponse {
    return { pushes: page.pushes.map((p) => this.#record(p)), ...(page.next === undefined ? {} : { next: page.next }) };
  }

  #record(p: StoredPush): PushRecordResponse {
    return {
      pushId: p.pushId,
      serial: p.serial,
      updateId: p.updateId,
      subscriber: this.#agency(p.requesterAgencyId),
      provider: this.#agency(p.providerAgencyId),
      procedureCode: p.procedureCode,
      itemCode: p.itemCode,
      status: p.status,
      attempts: p.attempts,
      updatedAt: p.updatedAt,
      issuedAt: p.issuedAt,
      deliverBy: p.deliverBy,
      endedAt: p.endedAt,
      endSerial: p.endSerial,
    };
  }

  #agency(agencyId: string): { agencyId: string; name: string | null } {
    const state = this.views.agency(agencyId);
    return { agencyId, name: state.status === 'unregistered' ? null : state.agency.name };
  }
}
