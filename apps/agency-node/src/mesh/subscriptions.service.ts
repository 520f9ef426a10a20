import { AgencyProblem } from '../http/agency-problem.js';
import { hubProblemOf, type HubAnswer, type HubClient } from '../hub/hub-client.js';
import type { AgencyStore } from '../store/agency-store.js';

export interface SubscribeInput {
  readonly localId: string;
  readonly providerAgencyId: string;
  readonly procedureCode: string;
  readonly itemCodes: readonly string[];
  readonly expiresAt?: string;
}

/** A subscription as the hub describes it, with the node's own local id for the person its code names (null: no one here). */
export type Subscription = Record<string, unknown> & { readonly subscriptionId: string; readonly localId: string | null };

const SUBSCRIPTION_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/**
 * Subscriptions (購読) for the agency's staff, kept by the hub (`/v1/subscriptions`): the node turns its
 * local id into its own code to subscribe, and the hub's codes back into local ids when it lists. The
 * hub decides (the authorization table's push column) and records; its refusals are passed on with
 * their status, code and serial.
 */
export class SubscriptionsService {
  constructor(
    private readonly store: AgencyStore,
    private readonly hub: HubClient,
  ) {}

  async subscribe(input: SubscribeInput): Promise<Subscription> {
    const person = this.store.person(input.localId);
    if (person === undefined) throw new AgencyProblem('PERSON_NOT_FOUND', `no person with local id ${input.localId}; load them first (load-copies)`);
    if (person.agencyCode === null) {
      throw new AgencyProblem('CODE_NOT_ACQUIRED', `no agency code was acquired for local id ${input.localId}; acquire it first (POST /v1/agency-codes with the individual number)`);
    }
    const res = await this.hub.post('/v1/subscriptions', {
      code: person.agencyCode,
      providerAgencyId: input.providerAgencyId,
      procedureCode: input.procedureCode,
      itemCodes: input.itemCodes,
      ...(input.expiresAt === undefined ? {} : { expiresAt: input.expiresAt }),
    });
    if (res.status !== 201 && res.status !== 200) throw hubProblemOf(res);
    const body = this.subscriptionOf(res, 'subscribing');
    return { ...body, localId: person.localId };
  }

  async list(options: { limit?: number; after?: string }): Promise<{ subscriptions: Subscription[]; next?: string }> {
    const query = new URLSearchParams();
    if (options.limit !== undefined) query.set('limit', String(options.limit));
    if (options.after !== undefined) query.set('after', options.after);
    const res = await this.hub.request('GET', `/v1/subscriptions${query.size > 0 ? `?${query.toString()}` : ''}`);
    if (res.status !== 200) throw hubProblemOf(res);
    const body = res.body as { subscriptions?: unknown; next?: unknown } | undefined;
    if (!Array.isArray(body?.subscriptions)) throw new AgencyProblem('HUB_PROTOCOL_ERROR', 'the hub listed subscriptions without a "subscriptions" array');
    const subscriptions = (body.subscriptions as Record<string, unknown>[]).map((s) => this.withLocalId(s));
    return { subscriptions, ...(typeof body.next === 'string' ? { next: body.next } : {}) };
  }

  async get(subscriptionId: string): Promise<Subscription> {
    const res = await this.hub.request('GET', `/v1/subscriptions/${encodeURIComponent(checkId(subscriptionId))}`);
    if (res.status !== 200) throw hubProblemOf(res);
    return this.withLocalId(this.subscriptionOf(res, 'reading the subscription'));
  }

  async cancel(subscriptionId: string): Promise<Record<string, unknown>> {
    const res = await this.hub.request('DELETE', `/v1/subscriptions/${encodeURIComponent(checkId(subscriptionId))}`);
    if (res.status !== 200) throw hubProblemOf(res);
    return this.subscriptionOf(res, 'cancelling');
  }

  private subscriptionOf(res: HubAnswer, what: string): Record<string, unknown> & { subscriptionId: string } {
    const body = res.body as Record<string, unknown> | undefined;
    if (typeof body?.['subscriptionId'] !== 'string') throw new AgencyProblem('HUB_PROTOCOL_ERROR', `the hub answered ${what} without a subscriptionId`);
    return body as Record<string, unknown> & { subscriptionId: string };
  }

  private withLocalId(s: Record<string, unknown>): Subscription {
    const code = s['code'];
    const localId = typeof code === 'string' ? (this.store.personByCode(code)?.localId ?? null) : null;
    return { ...s, subscriptionId: String(s['subscriptionId']), localId };
  }
}

function checkId(id: string): string {
  if (!SUBSCRIPTION_ID.test(id)) throw new AgencyProblem('VALIDATION_FAILED', 'subscriptionId must be 1-128 letters, digits, ".", "_", ":" or "-"', { errors: [{ field: 'subscriptionId', message: 'is not a subscription id' }] });
  return id;
}
