import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { FastifyReply } from 'fastify';
import type { ChainKey } from '#audit-log';
import type { AuditController } from '../audit/audit.controller.js';
import { ConsistencyQuery, EntriesQuery, FormatQuery, InclusionQuery } from '../audit/audit.dto.js';
import { credentialed, limited, unary, validated, type RefusalGuard } from './grpc-call.js';

/** uint64 fields arrive as decimal strings (proto-loader `longs: String`), like HTTP query strings. */
interface CheckpointAtMessage {
  size?: string;
}
interface InclusionMessage {
  leaf?: 'position' | 'serial';
  position?: string;
  serial?: string;
  size?: string;
}
interface ConsistencyMessage {
  from?: string;
  to?: string;
}
interface EntriesMessage {
  from?: string;
  limit?: number;
}

/** What the audit controller answers in its JSON form (see audit.controller.ts). */
interface CheckpointJson {
  origin: string;
  size: number;
  rootHex: string;
  timeMs: number;
  position: number;
  note: string;
}
interface InclusionJson {
  size: number;
  rootHex: string;
  proofs: { position: number; serial: string; envelope?: string; leafHex: string; proof: string[] }[];
}
interface ConsistencyJson {
  from: number;
  to: number;
  fromRootHex: string;
  toRootHex: string;
  proof: string[];
}

const bytes = (hex: string): Buffer => Buffer.from(hex, 'hex');
const JSON_FORMAT = Object.assign(new FormatQuery(), { format: 'json' as const });

/** The controller touches the reply only for its text form; the gRPC edge always asks for JSON. */
const NO_REPLY = new Proxy({} as FastifyReply, {
  get() {
    throw new Error('the audit controller used the HTTP reply for a JSON answer');
  },
});

function checkpoint(c: CheckpointJson) {
  return { origin: c.origin, size: c.size, root: bytes(c.rootHex), timeMs: c.timeMs, position: c.position, note: c.note };
}

/**
 * linkage_ledger.v1.Audit. The audit endpoints dispatch nothing on the buses: their rules (which size,
 * which errors) live in the HTTP audit controller, so this service calls the controller's JSON answers
 * with DTO-validated arguments instead of repeating them. Proto3 leaves an unset non-optional number at 0.
 * Every read is under its caller's rate limit (`limited`, docs/rate-limits.md), as over HTTP.
 */
export function auditService(controller: AuditController, guard: Pick<RefusalGuard, 'identify' | 'limit'>): UntypedServiceImplementation {
  return {
    GetCheckpoint: unary(limited('GetCheckpoint', guard, async () => checkpoint(controller.latest(JSON_FORMAT, NO_REPLY) as CheckpointJson))),

    GetCheckpointAt: unary(limited('GetCheckpointAt', guard, async (m: CheckpointAtMessage) => checkpoint(controller.bySize(m.size ?? '0', JSON_FORMAT, NO_REPLY) as CheckpointJson))),

    GetVerifierKey: unary(limited('GetVerifierKey', guard, async () => controller.verifierKey(JSON_FORMAT, NO_REPLY) as { origin: string; verifierKey: string })),

    GetVerifierKeys: unary(limited('GetVerifierKeys', guard, async () => (await controller.verifierKeys()) as { origin: string; keys: ChainKey[] })),

    GetInclusionProof: unary(limited('GetInclusionProof', guard, async (m: InclusionMessage, call) => {
      const q = validated(InclusionQuery, { position: m.position, serial: m.serial, size: m.size });
      const r = (await controller.inclusion(q, credentialed(call))) as InclusionJson;
      return {
        size: r.size,
        root: bytes(r.rootHex),
        proofs: r.proofs.map((p) => ({ position: p.position, serial: p.serial, ...(p.envelope === undefined ? {} : { envelope: p.envelope }), leafHash: bytes(p.leafHex), proof: p.proof.map(bytes) })),
      };
    })),

    GetConsistencyProof: unary(limited('GetConsistencyProof', guard, async (m: ConsistencyMessage) => {
      const q = validated(ConsistencyQuery, { from: m.from ?? '0', to: m.to ?? '0' });
      const r = controller.consistency(q) as ConsistencyJson;
      return { from: r.from, to: r.to, fromRoot: bytes(r.fromRootHex), toRoot: bytes(r.toRootHex), proof: r.proof.map(bytes) };
    })),

    ListEntries: unary(limited('ListEntries', guard, async (m: EntriesMessage, call) => {
      // limit is a uint32 (a number); the DTO's query-string rules expect digits, as HTTP sends them.
      const q = validated(EntriesQuery, { from: m.from, limit: m.limit === undefined ? undefined : String(m.limit) });
      return (await controller.entries(q, credentialed(call))) as { from: number; head: number; entries: string[] };
    })),
  };
}
