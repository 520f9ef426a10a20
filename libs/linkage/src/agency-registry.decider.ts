import type { Decider, Evolvable, LinkageCommand, LinkageEvent } from './decider.js';
import { LinkageError, unreachable } from './errors.js';
import {
  AGENCY_KINDS,
  isAgencyKind,
  displayTextMessage,
  isSha256Hex,
  isX25519PublicKey,
  requireAgencyId,
  requireInstant,
  type AgencyId,
  type AgencyKind,
  type Sha256Hex,
} from './identifiers.js';

/**
 * The agency registry: one stream per agency, `agency-<agencyId>`. Each change is one event that ends
 * its own serial. The credential is a per-agency secret token; only its SHA-256 enters the command
 * (the caller hashes it) and the log. A kind never changes: a different kind is a different agency,
 * because the authorization table is written in kinds.
 */

export function agencyStreamId(agencyId: AgencyId): string {
  return `agency-${agencyId}`;
}

/** Held forever: one token digest authenticates exactly one agency, and a rotated-out token never returns. */
export function agencyCredentialClaim(credentialDigest: Sha256Hex): string {
  return `agency-credential:${credentialDigest}`;
}

const ENDPOINT_PROTOCOLS = ['http:', 'https:', 'grpc:', 'grpcs:'];

// ---- commands ----

export interface RegisterAgencyData {
  readonly agencyId: string;
  readonly name: string;
  readonly kind: string;
  /** The intermediate server's (中間サーバー) base URL: http(s):// or grpc(s)://, no user info. */
  readonly endpoint: string;
  /** X25519 public key, 32 bytes as unpadded base64url: answers to this agency can be encrypted to it. */
  readonly publicKey: string;
  /** SHA-256 (hex) of the agency's secret token. The token itself never reaches the decider. */
  readonly credentialDigest: string;
  /**
   * A municipality's 全国地方公共団体コード (6 digits, checked against the list in force by the caller):
   * the agency may then issue and change the individual numbers of that municipality's residents.
   * Municipalities only; one agency per code.
   */
  readonly municipalityCode?: string;
  readonly registeredAt: string;
}
export type RegisterAgency = LinkageCommand<'RegisterAgency', RegisterAgencyData>;

export interface UpdateAgencyData {
  readonly name?: string;
  readonly endpoint?: string;
  readonly publicKey?: string;
  readonly updatedAt: string;
}
export type UpdateAgency = LinkageCommand<'UpdateAgency', UpdateAgencyData>;

export interface RotateAgencyCredentialData {
  readonly credentialDigest: string;
  readonly rotatedAt: string;
}
export type RotateAgencyCredential = LinkageCommand<'RotateAgencyCredential', RotateAgencyCredentialData>;

export interface RevokeAgencyData {
  readonly reason: string;
  readonly revokedAt: string;
}
export type RevokeAgency = LinkageCommand<'RevokeAgency', RevokeAgencyData>;

export type AgencyRegistryCommand = RegisterAgency | UpdateAgency | RotateAgencyCredential | RevokeAgency;

// ---- events ----

export interface AgencyRegisteredData {
  readonly agencyId: AgencyId;
  readonly name: string;
  readonly kind: AgencyKind;
  readonly endpoint: string;
  readonly publicKey: string;
  readonly credentialDigest: Sha256Hex;
  readonly municipalityCode?: string;
  readonly registeredAt: string;
}
export type AgencyRegistered = LinkageEvent<'AgencyRegistered', AgencyRegisteredData>;

export interface AgencyChanges {
  readonly name?: string;
  readonly endpoint?: string;
  readonly publicKey?: string;
}
export interface AgencyUpdatedData {
  readonly agencyId: AgencyId;
  /** Only the fields that changed, with their new values. */
  readonly changes: AgencyChanges;
  readonly updatedAt: string;
}
export type AgencyUpdated = LinkageEvent<'AgencyUpdated', AgencyUpdatedData>;

export interface AgencyCredentialRotatedData {
  readonly agencyId: AgencyId;
  readonly credentialDigest: Sha256Hex;
  readonly rotatedAt: string;
}
export type AgencyCredentialRotated = LinkageEvent<'AgencyCredentialRotated', AgencyCredentialRotatedData>;

export interface AgencyRevokedData {
  readonly agencyId: AgencyId;
  readonly reason: string;
  readonly revokedAt: string;
}
export type AgencyRevoked = LinkageEvent<'AgencyRevoked', AgencyRevokedData>;

export type AgencyRegistryEvent = AgencyRegistered | AgencyUpdated | AgencyCredentialRotated | AgencyRevoked;

// ---- state ----

export interface AgencyRecord {
  readonly agencyId: AgencyId;
  readonly name: string;
  readonly kind: AgencyKind;
  readonly endpoint: string;
  readonly publicKey: string;
  readonly credentialDigest: Sha256Hex;
  /** The municipality whose residents this agency numbers (municipalities only). */
  readonly municipalityCode?: string;
  readonly registeredAt: string;
  readonly updatedAt?: string;
}

export interface UnregisteredAgency {
  readonly status: 'unregistered';
}
export interface ActiveAgency {
  readonly status: 'active';
  readonly agency: AgencyRecord;
}
export interface RevokedAgency {
  readonly status: 'revoked';
  readonly agency: AgencyRecord;
  readonly reason: string;
  readonly revokedAt: string;
}
export type AgencyRegistryState = UnregisteredAgency | ActiveAgency | RevokedAgency;

/** What other deciders need to know about an agency: looked up by the caller and put into their commands. */
export interface AgencyFacts {
  readonly agencyId: AgencyId;
  readonly kind: AgencyKind;
  readonly status: 'active' | 'revoked';
  readonly credentialDigest: Sha256Hex;
}

export function agencyFacts(state: AgencyRegistryState): AgencyFacts | undefined {
  switch (state.status) {
    case 'unregistered':
      return undefined;
    case 'active':
    case 'revoked':
      return { agencyId: state.agency.agencyId, kind: state.agency.kind, status: state.status, credentialDigest: state.agency.credentialDigest };
    default:
      return unreachable(state, 'status');
  }
}

export function initialAgencyRegistryState(): AgencyRegistryState {
  return { status: 'unregistered' };
}

export function evolveAgencyRegistry(state: AgencyRegistryState, event: Evolvable<AgencyRegistryEvent>): AgencyRegistryState {
  switch (event.type) {
    case 'AgencyRegistered': {
      const { agencyId, name, kind, endpoint, publicKey, credentialDigest, municipalityCode, registeredAt } = event.data;
      return { status: 'active', agency: { agencyId, name, kind, endpoint, publicKey, credentialDigest, ...(municipalityCode === undefined ? {} : { municipalityCode }), registeredAt } };
    }
    case 'AgencyUpdated':
      if (state.status !== 'active') return state;
      return { status: 'active', agency: { ...state.agency, ...event.data.changes, updatedAt: event.data.updatedAt } };
    case 'AgencyCredentialRotated':
      if (state.status !== 'active') return state;
      return { status: 'active', agency: { ...state.agency, credentialDigest: event.data.credentialDigest, updatedAt: event.data.rotatedAt } };
    case 'AgencyRevoked':
      if (state.status !== 'active') return state;
      return { status: 'revoked', agency: state.agency, reason: event.data.reason, revokedAt: event.data.revokedAt };
    default:
      return unreachable(event, 'type');
  }
}

export function decideAgencyRegistry(command: AgencyRegistryCommand, state: AgencyRegistryState): readonly AgencyRegistryEvent[] {
  switch (command.type) {
    case 'RegisterAgency':
      return [register(command.data, state)];
    case 'UpdateAgency':
      return [update(command.data, active(state))];
    case 'RotateAgencyCredential':
      return [rotate(command.data, active(state))];
    case 'RevokeAgency':
      return [revoke(command.data, active(state))];
    default:
      return unreachable(command, 'type');
  }
}

export const agencyRegistryDecider: Decider<AgencyRegistryState, AgencyRegistryCommand, AgencyRegistryEvent, Evolvable<AgencyRegistryEvent>> = {
  initialState: initialAgencyRegistryState,
  evolve: evolveAgencyRegistry,
  decide: decideAgencyRegistry,
};

function active(state: AgencyRegistryState): AgencyRecord {
  switch (state.status) {
    case 'active':
      return state.agency;
    case 'unregistered':
      throw new LinkageError('AGENCY_NOT_REGISTERED', 'this agency is not registered; register it first');
    case 'revoked':
      throw new LinkageError('AGENCY_REVOKED', `agency ${state.agency.agencyId} was revoked at ${state.revokedAt} (${state.reason}); a revoked agency cannot be changed — register a new agency id`, {
        agencyId: state.agency.agencyId,
      });
    default:
      return unreachable(state, 'status');
  }
}

function register(c: RegisterAgencyData, state: AgencyRegistryState): AgencyRegistered {
  switch (state.status) {
    case 'unregistered':
      break;
    case 'active':
    case 'revoked':
      throw new LinkageError(
        'AGENCY_ALREADY_REGISTERED',
        `agency ${state.agency.agencyId} is already registered (${state.status}); use UpdateAgency or RotateAgencyCredential to change it`,
        { agencyId: state.agency.agencyId },
      );
    default:
      return unreachable(state, 'status');
  }
  const agencyId = requireAgencyId(c.agencyId);
  if (!isAgencyKind(c.kind)) {
    throw new LinkageError('UNKNOWN_AGENCY_KIND', `agency kind "${String(c.kind)}" is unknown; use one of ${AGENCY_KINDS.join(', ')}`, { kind: c.kind });
  }
  return {
    type: 'AgencyRegistered',
    schemaVersion: 1,
    data: {
      agencyId,
      name: requireName(c.name),
      kind: c.kind,
      endpoint: requireEndpoint(c.endpoint),
      publicKey: requirePublicKey(c.publicKey),
      credentialDigest: requireCredentialDigest(c.credentialDigest),
      ...(c.municipalityCode === undefined ? {} : { municipalityCode: requireMunicipalityCode(c.municipalityCode, c.kind) }),
      registeredAt: requireInstant(c.registeredAt, 'registeredAt'),
    },
    terminal: 'completed',
    claims: [agencyCredentialClaim(c.credentialDigest as Sha256Hex), ...(c.municipalityCode === undefined ? [] : [municipalityAgencyClaim(c.municipalityCode)])],
  };
}

/** The claim that makes one agency per municipality code (a second registration fails the append). */
export function municipalityAgencyClaim(municipalityCode: string): string {
  return `municipality-agency:${municipalityCode}`;
}

function requireMunicipalityCode(code: string, kind: AgencyKind): string {
  if (kind !== 'municipality') {
    throw new LinkageError('MUNICIPALITY_CODE_NOT_ALLOWED', `only a municipality agency has a municipality code; this agency is of kind ${kind}`, { kind });
  }
  if (!/^[0-9]{6}$/.test(code)) throw new LinkageError('INVALID_MUNICIPALITY_CODE', 'municipalityCode must be the 6 digits of a 全国地方公共団体コード', { field: 'municipalityCode' });
  return code;
}

function update(c: UpdateAgencyData, agency: AgencyRecord): AgencyUpdated {
  const changes: { name?: string; endpoint?: string; publicKey?: string } = {};
  if (c.name !== undefined && requireName(c.name) !== agency.name) changes.name = c.name;
  if (c.endpoint !== undefined && requireEndpoint(c.endpoint) !== agency.endpoint) changes.endpoint = c.endpoint;
  if (c.publicKey !== undefined && requirePublicKey(c.publicKey) !== agency.publicKey) changes.publicKey = c.publicKey;
  if (Object.keys(changes).length === 0) {
    throw new LinkageError('NOTHING_TO_UPDATE', `the update changes nothing for agency ${agency.agencyId}: give a new name, endpoint or public key`, { agencyId: agency.agencyId });
  }
  return {
    type: 'AgencyUpdated',
    schemaVersion: 1,
    data: { agencyId: agency.agencyId, changes, updatedAt: requireInstant(c.updatedAt, 'updatedAt') },
    terminal: 'completed',
  };
}

function rotate(c: RotateAgencyCredentialData, agency: AgencyRecord): AgencyCredentialRotated {
  const digest = requireCredentialDigest(c.credentialDigest);
  if (digest === agency.credentialDigest) {
    throw new LinkageError('CREDENTIAL_UNCHANGED', `the new credential of agency ${agency.agencyId} equals the current one; issue a fresh secret token`, { agencyId: agency.agencyId });
  }
  return {
    type: 'AgencyCredentialRotated',
    schemaVersion: 1,
    data: { agencyId: agency.agencyId, credentialDigest: digest, rotatedAt: requireInstant(c.rotatedAt, 'rotatedAt') },
    terminal: 'completed',
    claims: [agencyCredentialClaim(digest)],
  };
}

function revoke(c: RevokeAgencyData, agency: AgencyRecord): AgencyRevoked {
  const problem = displayTextMessage('reason', c.reason);
  if (problem !== undefined) throw new LinkageError('MALFORMED', problem, { field: 'reason' });
  return {
    type: 'AgencyRevoked',
    schemaVersion: 1,
    data: { agencyId: agency.agencyId, reason: c.reason, revokedAt: requireInstant(c.revokedAt, 'revokedAt') },
    terminal: 'completed',
  };
}

function requireName(name: unknown): string {
  const problem = displayTextMessage('name', name);
  if (problem !== undefined) throw new LinkageError('INVALID_NAME', problem, { field: 'name' });
  return name as string;
}

function requireEndpoint(endpoint: unknown): string {
  const problem = endpointProblem(endpoint);
  if (problem !== undefined) {
    throw new LinkageError('INVALID_ENDPOINT', `endpoint ${problem}; give the intermediate server's base URL, e.g. https://node.muroran.example:8443`);
  }
  return endpoint as string;
}

function endpointProblem(endpoint: unknown): string | undefined {
  if (typeof endpoint !== 'string' || endpoint.length === 0 || endpoint.length > 2048) return 'must be a URL of at most 2048 characters';
  if (!URL.canParse(endpoint)) return 'is not a URL';
  const url = new URL(endpoint);
  if (!ENDPOINT_PROTOCOLS.includes(url.protocol)) return `must use ${ENDPOINT_PROTOCOLS.map((p) => p.slice(0, -1)).join(', ')}`;
  if (url.username !== '' || url.password !== '') return 'must not carry user info: credentials go in the registry, not the URL';
  if (url.hostname === '') return 'must name a host';
  return undefined;
}

function requirePublicKey(key: unknown): string {
  if (!isX25519PublicKey(key)) {
    throw new LinkageError('INVALID_PUBLIC_KEY', 'publicKey must be an X25519 public key: 32 bytes as unpadded base64url (43 characters)');
  }
  return key;
}

function requireCredentialDigest(digest: unknown): Sha256Hex {
  if (!isSha256Hex(digest)) {
    throw new LinkageError('INVALID_CREDENTIAL_DIGEST', 'credentialDigest must be the lowercase hex SHA-256 of the agency\'s secret token (hash the token before registering)');
  }
  return digest;
}
