import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import type { ProvisionBatch, ProvisionRequest } from '#linkage';
import { fromBase64url } from '#sealed-answer';
import { AgencyProblem } from '../http/agency-problem.js';

/** A provision request whose requestedAt is further than this from the server's clock is refused (400). */
export const FRESHNESS_MS = 300_000;
export const SIGNATURE_HEADER = 'hub-signature';

/** The hub's provision-signing public key (Ed25519), from base64url raw 32 bytes. */
export function hubVerifierKey(rawBase64url: string): KeyObject {
  const raw = fromBase64url(rawBase64url);
  if (raw?.length !== 32) throw new Error('the hub provision-signing key must be 43 characters of unpadded base64url (raw 32-byte Ed25519 public key)');
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: rawBase64url }, format: 'jwk' });
}

/**
 * `hub-signature: ed25519=<base64url>` MUST verify over the exact body bytes, before anything in the
 * body is trusted or recorded.
 */
export function verifyHubSignature(header: string | string[] | undefined, body: Buffer | undefined, key: KeyObject): void {
  const match = typeof header === 'string' ? /^ed25519=([A-Za-z0-9_-]{86})$/.exec(header.trim()) : null;
  const signature = match ? fromBase64url(match[1]!) : undefined;
  if (signature?.length !== 64 || body === undefined || !verify(null, body, key, signature)) {
    throw new AgencyProblem(
      'HUB_SIGNATURE_INVALID',
      `the ${SIGNATURE_HEADER} header must be "ed25519=<base64url signature>" over the exact body bytes, made with the hub's provision-signing key`,
    );
  }
}

/** requestedAt within FRESHNESS_MS of `now`, either way (a replay, or a clock far off). */
export function checkFreshness(requests: readonly ProvisionRequest[], now: Date): void {
  for (const [i, r] of requests.entries()) {
    const skew = Math.abs(Date.parse(r.requestedAt) - now.getTime());
    if (!(skew <= FRESHNESS_MS)) {
      throw new AgencyProblem(
        'STALE_REQUEST',
        `requestedAt ${r.requestedAt}${requests.length > 1 ? ` (request ${i})` : ''} is more than ${FRESHNESS_MS / 1000} s away from this server's clock (${now.toISOString()}); check both clocks`,
        { serial: r.serial },
      );
    }
  }
}

/** The two JSON Schemas of schemas/provision, compiled once. */
export class ProvisionSchemas {
  private readonly single: ValidateFunction;
  private readonly batch: ValidateFunction;
  readonly response: ValidateFunction;
  readonly batchResponse: ValidateFunction;

  constructor(dir: string = provisionSchemaDir()) {
    const ajv = new Ajv2020({ strict: true, allErrors: true });
    const request = JSON.parse(readFileSync(join(dir, 'provision-request.v1.schema.json'), 'utf8')) as { $id: string };
    const response = JSON.parse(readFileSync(join(dir, 'provision-response.v1.schema.json'), 'utf8')) as { $id: string };
    ajv.addSchema(request).addSchema(response);
    this.single = ajv.getSchema(request.$id)!;
    this.batch = ajv.getSchema(`${request.$id}#/$defs/batch`)!;
    this.response = ajv.getSchema(response.$id)!;
    this.batchResponse = ajv.getSchema(`${response.$id}#/$defs/batch`)!;
  }

  request(body: unknown): ProvisionRequest {
    if (!this.single(body)) throw invalid(this.single);
    return body as ProvisionRequest;
  }

  batchRequest(body: unknown): ProvisionBatch {
    if (!this.batch(body)) throw invalid(this.batch);
    return body as ProvisionBatch;
  }
}

function invalid(validate: ValidateFunction): AgencyProblem {
  const errors = (validate.errors ?? []).slice(0, 20).map((e) => ({ field: e.instancePath === '' ? '(body)' : e.instancePath, message: e.message ?? 'is not valid' }));
  const detail = errors.length === 1 ? `${errors[0]!.field}: ${errors[0]!.message}` : `${errors.length} problems against provision-request.v1.schema.json; see errors`;
  return new AgencyProblem('VALIDATION_FAILED', detail, { errors });
}

/** schemas/provision of the repository this module belongs to (apps/agency-node/src in tests, dist/apps/agency-node/src once built). */
export function provisionSchemaDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'schemas', 'provision');
    if (existsSync(join(candidate, 'provision-request.v1.schema.json'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('schemas/provision/provision-request.v1.schema.json not found above the agency-node build');
    dir = parent;
  }
}
