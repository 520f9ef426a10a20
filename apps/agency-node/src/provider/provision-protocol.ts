import { verify } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import type { ProvisionBatch, ProvisionRequest } from '#linkage';
import { fromBase64url } from '#sealed-answer';
import { AgencyProblem } from '../http/agency-problem.js';
import type { HubKeys } from '../hub/hub-keys.js';

/** A provision request whose requestedAt is further than this from the server's clock is refused (400). */
export const FRESHNESS_MS = 300_000;
export const SIGNATURE_HEADER = 'hub-signature';

export { hubVerifierKey } from '../hub/hub-keys.js';

/** The header naming the provision signing key that made `hub-signature` (its key id). */
export const SIGNATURE_KEY_HEADER = 'hub-signature-key';

const KEY_ID = /^[0-9a-f]{16}$/;

/**
 * `hub-signature: ed25519=<base64url>` MUST verify over the exact body bytes, with the key named by
 * `hub-signature-key` (none named: the key the hub serves as current), before anything in the body is
 * trusted or recorded. A key the hub does not serve, or retired, is refused with its own code (HubKeys).
 */
export async function verifyHubSignature(header: string | string[] | undefined, body: Buffer | undefined, keys: HubKeys, keyIdHeader?: string | string[]): Promise<void> {
  const match = typeof header === 'string' ? /^ed25519=([A-Za-z0-9_-]{86})$/.exec(header.trim()) : null;
  const signature = match ? fromBase64url(match[1]!) : undefined;
  if (keyIdHeader !== undefined && keyIdHeader !== '' && (typeof keyIdHeader !== 'string' || !KEY_ID.test(keyIdHeader.trim()))) {
    throw new AgencyProblem('HUB_SIGNATURE_INVALID', `the ${SIGNATURE_KEY_HEADER} header must be one provision signing key id (16 hex digits, as GET /v1/hub/keys serves it)`);
  }
  if (signature?.length !== 64 || body === undefined) throw invalidSignature();
  const keyId = typeof keyIdHeader === 'string' && keyIdHeader !== '' ? keyIdHeader.trim() : undefined;
  const key = await keys.keyFor(keyId);
  if (!verify(null, body, key, signature)) throw invalidSignature();
}

function invalidSignature(): AgencyProblem {
  return new AgencyProblem(
    'HUB_SIGNATURE_INVALID',
    `the ${SIGNATURE_HEADER} header must be "ed25519=<base64url signature>" over the exact body bytes, made with the hub's provision-signing key named by ${SIGNATURE_KEY_HEADER}`,
  );
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
