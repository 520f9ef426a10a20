import type { ProviderRefusalReason } from './query.decider.js';

/**
 * The provision protocol between the hub and an intermediate server (中間サーバー): the bodies both sides
 * exchange (schemas/provision/README.md; JSON Schemas beside it). Types only: transport, signatures and
 * sealing live with each side.
 */
export const PROVISION_PROTOCOL = 'linkage-ledger/provision/v1';

/** What the hub asks the provider, signed by the hub (`hub-signature`). */
export interface ProvisionRequest {
  /** Always sent by the hub; optional inside a batch, whose envelope names it. */
  readonly protocol?: string;
  readonly serial: string;
  readonly queryId: string;
  /** The requesting agency; absent when the person asks about themself (`requesterKind: 'citizen'`). */
  readonly requesterAgencyId?: string;
  /** The requesting agency's kind, or 'citizen' for a self-information request (自己情報表示, procedureCode 'self-information'). */
  readonly requesterKind: string;
  readonly providerAgencyId: string;
  /** The provider's own agency code for the person. */
  readonly code: string;
  readonly procedureCode: string;
  readonly itemCodes: readonly string[];
  /** The requester's X25519 key: the answer MUST then be sealed to it. Mandatory when the requester is a citizen. */
  readonly answerPublicKey?: string;
  readonly requestedAt: string;
}

/** One call for many requests to one provider (bulk queries). */
export interface ProvisionBatch {
  readonly protocol: string;
  readonly requests: readonly ProvisionRequest[];
}

/** The provider's answer to one request: base64url bytes (sealed when asked), or a refusal. */
export type ProvisionResponse =
  | { readonly status: 'answered'; readonly answer: string; readonly encrypted: boolean }
  | { readonly status: 'refused'; readonly reason: ProviderRefusalReason };
