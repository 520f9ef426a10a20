import { createHash, randomBytes, randomUUID } from 'node:crypto';
import {
  agencyCodeFromRandomBytes,
  compileAuthorizationPolicy,
  parseAuthorizationTable,
  type AgencyCode,
  type AgencyFacts,
  type AgencyId,
  type AgencyKind,
  type AuthorizationPolicy,
  type AuthorizationTable,
  type Sha256Hex,
  type SubjectId,
} from '#linkage';
import { readJson } from '../../../test/support/json-schema.js';

export const TABLE_FILE = 'schemas/authorization/authorization-table.v1.json';
export const TABLE_SCHEMA = 'schemas/authorization/authorization-table.schema.json';

export const rawTable = (): Record<string, unknown> => readJson(TABLE_FILE) as Record<string, unknown>;
export const table = (): AuthorizationTable => parseAuthorizationTable(rawTable());
export const policy = (): AuthorizationPolicy => compileAuthorizationPolicy(table());

export const sha256 = (text: string): Sha256Hex => createHash('sha256').update(text).digest('hex') as Sha256Hex;
export const freshCode = (): AgencyCode => agencyCodeFromRandomBytes(randomBytes(16));
export const freshSubject = (): SubjectId => randomUUID() as SubjectId;
export const x25519Key = (seed: string): string => createHash('sha256').update(seed).digest('base64url');

export const T0 = '2026-04-01T09:00:00.000Z';
export const T1 = '2026-04-01T09:00:01.000Z';
export const T2 = '2026-04-01T09:00:02.000Z';

/** The worked example of seeds/001: the Japan Pension Service asks Muroran City. */
export const PENSION = 'jpn-pension-service' as AgencyId;
export const MURORAN = 'muroran-city' as AgencyId;
export const SAPPORO = 'sapporo-city' as AgencyId;
export const HELLO_WORK = 'hello-work-muroran' as AgencyId;

export const TOKENS: Readonly<Record<string, string>> = {
  [PENSION]: 'token-of-the-pension-service',
  [MURORAN]: 'token-of-muroran-city',
  [SAPPORO]: 'token-of-sapporo-city',
  [HELLO_WORK]: 'token-of-hello-work-muroran',
};

export function facts(agencyId: AgencyId, kind: AgencyKind, status: 'active' | 'revoked' = 'active'): AgencyFacts {
  return { agencyId, kind, status, credentialDigest: sha256(TOKENS[agencyId] ?? `token-${agencyId}`) };
}

/** Aoyama-san (seeds/001): the hub's subject id, code A at the pension service, code B at Muroran. */
export const AOYAMA = '6f1c2a9e-3b7d-4c10-9e2a-5d8b7c6a4f30' as SubjectId;
export const CODE_A = 'JiU2JF9wZW5zaW9uLWNvZA' as AgencyCode;
export const CODE_B = 'IzlAVy1tdXJvcmFuLWNvZA' as AgencyCode;
