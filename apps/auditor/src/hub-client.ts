import { type Hash, hashFromHex } from '#audit-log';
import { AuditorError } from './errors.js';

/** Most entries the hub returns per page (GET /v1/audit/entries). */
export const ENTRIES_PAGE_LIMIT = 10_000;

export interface InclusionProofAnswer {
  readonly size: number;
  readonly rootHex: string;
  readonly proofs: readonly {
    readonly position: number;
    readonly serial: string;
    readonly envelope?: string;
    readonly leafHex: string;
    readonly proof: readonly string[];
    /** The openings the hub gives a party of the serial (libs/sealing Opening). */
    readonly openings?: readonly { readonly field: string; readonly value: unknown; readonly salt: string }[];
  }[];
}

/**
 * The hub's audit endpoints, read over HTTP. Raw entries (and the envelopes in inclusion proofs) are the
 * auditor's to read: the client sends the auditor's bearer token when it has one.
 */
export class HubClient {
  private readonly base: string;
  private readonly token: string | undefined;

  constructor(url: string, token?: string) {
    this.base = url.replace(/\/+$/, '');
    this.token = token;
  }

  async head(): Promise<number> {
    const page = await this.json<{ head: number }>(`/v1/audit/entries?from=0&limit=1`);
    return page.head;
  }

  /** Raw envelope texts from `from`, at most `limit` (capped by the hub's page size). */
  async entries(from: number, limit: number): Promise<string[]> {
    const page = await this.json<{ entries: string[] }>(`/v1/audit/entries?from=${from}&limit=${Math.min(limit, ENTRIES_PAGE_LIMIT)}`);
    return page.entries;
  }

  /** The latest signed checkpoint note, or the one of exactly `size`. */
  async checkpointNote(size?: number): Promise<string> {
    return this.text(size === undefined ? '/v1/audit/checkpoint' : `/v1/audit/checkpoints/${size}`);
  }

  /** The hub's checkpoint key set as JSON text (GET /v1/audit/verifier-keys): unverified, checked as a chain by the caller. */
  async verifierKeys(): Promise<string> {
    return this.text('/v1/audit/verifier-keys');
  }

  /** The consistency proof the hub computes from its stored tree between two sizes (hashes, unverified). */
  async consistencyProof(from: number, to: number): Promise<Hash[]> {
    const answer = await this.json<{ proof: string[] }>(`/v1/audit/proofs/consistency?from=${from}&to=${to}`);
    return answer.proof.map((h) => hashFromHex(h));
  }

  /** The inclusion proof the hub computes from its stored tree for one position (hashes, unverified). */
  async inclusionProof(position: number, size: number): Promise<Hash[]> {
    const answer = await this.json<InclusionProofAnswer>(`/v1/audit/proofs/inclusion?position=${position}&size=${size}`);
    return (answer.proofs[0]?.proof ?? []).map((h) => hashFromHex(h));
  }

  async serialProofs(serial: string, size: number): Promise<InclusionProofAnswer> {
    return this.json<InclusionProofAnswer>(`/v1/audit/proofs/inclusion?serial=${encodeURIComponent(serial)}&size=${size}`);
  }

  private async json<T>(path: string): Promise<T> {
    return JSON.parse(await this.text(path)) as T;
  }

  private async text(path: string): Promise<string> {
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, this.token === undefined ? {} : { headers: { authorization: `Bearer ${this.token}` } });
    } catch (error) {
      throw new AuditorError('HUB_UNREACHABLE', `cannot reach the hub at ${this.base}: ${(error as Error).message}`);
    }
    const body = await res.text();
    if (!res.ok) {
      let detail = body;
      let code: string | undefined;
      try {
        const problem = JSON.parse(body) as { detail?: string; code?: string };
        detail = problem.detail ?? body;
        code = problem.code;
      } catch {
        // not problem+json: keep the raw body
      }
      const refused = res.status === 401 || res.status === 403;
      if (refused) throw new AuditorError('HUB_REFUSED', `GET ${path} answered ${res.status}${code ? ` ${code}` : ''}: ${detail} (pass --token-file with the hub's keys/auditor.token.json)`);
      throw new AuditorError(code === 'SERIAL_UNKNOWN' ? 'SERIAL_UNKNOWN' : 'HUB_UNREACHABLE', `GET ${path} answered ${res.status}${code ? ` ${code}` : ''}: ${detail}`);
    }
    return body;
  }
}
