import { Controller, Get, HttpCode, HttpStatus, Param, Post, Query, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { leafHash, toHex } from '#audit-log';
import type { CheckpointRecord } from '#ledger';
import { ApiProblems } from '../http/problem.dto.js';
import { Meta, type RequestMeta } from '../http/request-meta.js';
import { RecordsRefusals } from '../refusals/refusal.guard.js';
import { HubProblem } from '../http/hub-problem.js';
import { ConsistencyQuery, EntriesQuery, FormatQuery, InclusionQuery } from './audit.dto.js';
import { CheckpointSigner, type CheckpointKeyRotation } from './checkpoint-signer.service.js';
import { TreeFollower } from './tree-follower.service.js';
import { Authenticator, type Credentialed } from '../linkage/authenticator.js';
import { Openings } from './openings.js';

const TEXT = 'text/plain; charset=utf-8';

const CHECKPOINT_JSON = {
  type: 'object',
  required: ['origin', 'size', 'rootHex', 'timeMs', 'position', 'note'],
  properties: {
    origin: { type: 'string', description: 'The log origin line of the note.' },
    size: { type: 'integer', description: 'Tree size (number of events).' },
    rootHex: { type: 'string', description: 'Merkle root of the first `size` events, hex.' },
    timeMs: { type: 'integer', description: 'When it was signed (Unix milliseconds).' },
    position: { type: 'integer' },
    note: { type: 'string', description: 'The C2SP signed note, as served in text.' },
  },
};
const CHECKPOINT_RESPONSE = {
  description: 'The C2SP tlog-checkpoint signed note (text/plain, the default), or its fields with ?format=json.',
  content: { 'text/plain': { schema: { type: 'string' } }, 'application/json': { schema: CHECKPOINT_JSON } },
};
const CHAIN_KEY = {
  type: 'object',
  required: ['verifierKey', 'keyId', 'fromSize'],
  properties: {
    verifierKey: { type: 'string', description: 'C2SP signed-note verifier key `<origin>+<key id>+<base64>`.' },
    keyId: { type: 'string', description: 'Key id, 8 hex digits.' },
    fromSize: { type: 'integer', description: 'The smallest tree size whose checkpoint this key signs (0 for the first key).' },
    announcedAt: { type: 'integer', description: 'Position of the CheckpointKeyRotated event that announced it (absent for the first key).' },
    announcedBy: { type: 'string', description: 'Key id of the key it replaced, which announced it (absent for the first key).' },
    handoverSize: { type: 'integer', description: 'Size of its first checkpoint, signed by the previous key too.' },
    handoverNote: { type: 'string', description: 'That checkpoint, as a signed note with both signatures.' },
  },
};
export const OPERATOR_ACTOR = 'operator:hub';

const HEX_LIST = { type: 'array', items: { type: 'string', description: 'hex' } };

function checkpointJson(origin: string, c: CheckpointRecord) {
  return { origin, size: c.size, rootHex: toHex(c.root), timeMs: c.timeMs, position: c.position, note: c.note };
}

/**
 * Auditors' and citizens' view of the tamper evidence (I3): signed checkpoints, the verifier key,
 * inclusion and consistency proofs, and the raw entries they are computed from. Stored envelopes are
 * publishable (I10: personal fields sealed), so an inclusion proof carries them for anyone; a party of
 * the serial also gets the openings of its own fields, which it checks against the envelope.
 */
@ApiTags('audit')
@Controller('v1/audit')
export class AuditController {
  constructor(
    private readonly follower: TreeFollower,
    private readonly signer: CheckpointSigner,
    private readonly auth: Authenticator,
    private readonly openings: Openings,
  ) {}

  @Get('checkpoint')
  @ApiOperation({ summary: 'The latest signed checkpoint (C2SP tlog-checkpoint signed note; ?format=json for its fields).' })
  @ApiOkResponse(CHECKPOINT_RESPONSE)
  @ApiProblems('VALIDATION_FAILED', 'CHECKPOINT_NOT_FOUND', 'INTERNAL')
  latest(@Query() q: FormatQuery, @Res({ passthrough: true }) reply: FastifyReply): unknown {
    const c = this.follower.projection.latestCheckpoint();
    if (c === undefined) throw new HubProblem('CHECKPOINT_NOT_FOUND', 'no checkpoint has been signed yet; the hub signs one after the first events');
    return this.answer(c, q, reply);
  }

  @Get('checkpoints/:size')
  @ApiOperation({ summary: 'The signed checkpoint of exactly this tree size.' })
  @ApiOkResponse(CHECKPOINT_RESPONSE)
  @ApiProblems('VALIDATION_FAILED', 'SIZE_OUT_OF_RANGE', 'CHECKPOINT_NOT_FOUND', 'INTERNAL')
  bySize(@Param('size') size: string, @Query() q: FormatQuery, @Res({ passthrough: true }) reply: FastifyReply): unknown {
    const n = this.size(size, 'size');
    const c = this.follower.projection.checkpoint(n);
    if (c === undefined) throw new HubProblem('CHECKPOINT_NOT_FOUND', `no checkpoint was signed for size ${n}; GET /v1/audit/checkpoint gives the latest`);
    return this.answer(c, q, reply);
  }

  @Get('verifier-key')
  @ApiOperation({
    summary: "The first checkpoint signing key, as a C2SP signed-note verifier key: the root of the key chain a verifier pins. After a rotation the newest key is the last of /v1/audit/verifier-keys.",
  })
  @ApiOkResponse({
    description: 'The verifier key line (text/plain, the default), or { origin, verifierKey } with ?format=json.',
    content: {
      'text/plain': { schema: { type: 'string' } },
      'application/json': { schema: { type: 'object', required: ['origin', 'verifierKey'], properties: { origin: { type: 'string' }, verifierKey: { type: 'string' } } } },
    },
  })
  @ApiProblems('VALIDATION_FAILED', 'INTERNAL')
  verifierKey(@Query() q: FormatQuery, @Res({ passthrough: true }) reply: FastifyReply): unknown {
    if (q.format === 'json') return { origin: this.signer.origin, verifierKey: this.signer.firstVerifierKey };
    void reply.header('content-type', TEXT);
    return `${this.signer.firstVerifierKey}\n`;
  }

  @Get('verifier-keys')
  @ApiOperation({
    summary: 'Every checkpoint signing key of this log, first to newest: the chain a verifier follows from the first key (each later key announced in the log by the key before it).',
  })
  @ApiOkResponse({
    description: 'The origin and the keys; the key for a tree size is the last whose fromSize is at most the size.',
    schema: { type: 'object', required: ['origin', 'keys'], properties: { origin: { type: 'string' }, keys: { type: 'array', items: CHAIN_KEY } } },
  })
  @ApiProblems('INTERNAL')
  async verifierKeys(): Promise<unknown> {
    return { origin: this.signer.origin, keys: await this.signer.verifierKeys() };
  }

  @Post('checkpoint-key-rotations')
  @RecordsRefusals('RotateCheckpointKey')
  @HttpCode(HttpStatus.CREATED)
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'Rotate the checkpoint signing key (operator).',
    description:
      'A new Ed25519 key, stored in the keys dir (0600), announced by a CheckpointKeyRotated event (its own serial); the checkpoint over the log including that event is signed at once by the old and the new key, later ones by the new key only. Old checkpoints still verify (GET /v1/audit/verifier-keys). On KurrentDB only the leader rotates. Not idempotent: each call rotates again. A refusal is a RequestRefused event.',
  })
  @ApiCreatedResponse({
    description: 'The new key and where the log announced and handed over to it.',
    schema: {
      type: 'object',
      required: ['keyId', 'verifierKey', 'previousKeyId', 'position', 'serial', 'rotatedAt', 'handoverSize'],
      properties: {
        keyId: { type: 'string' },
        verifierKey: { type: 'string' },
        previousKeyId: { type: 'string' },
        position: { type: 'integer' },
        serial: { type: 'string' },
        rotatedAt: { type: 'string', format: 'date-time' },
        handoverSize: { type: 'integer' },
      },
    },
  })
  @ApiProblems('UNAUTHENTICATED', 'FORBIDDEN', 'INTERNAL', 'SERVICE_UNAVAILABLE', 'NOT_LEADER')
  async rotateKey(@Req() request: Credentialed, @Meta() meta: RequestMeta): Promise<CheckpointKeyRotation> {
    this.auth.operator(request);
    return this.signer.rotate({ actor: OPERATOR_ACTOR, correlationId: meta.correlationId });
  }

  @Get('proofs/inclusion')
  @ApiOperation({ summary: 'Inclusion proof of one event (position) or of every event of a serial, against a tree size (default: the latest checkpoint).' })
  @ApiOkResponse({
    description: 'Openings ({ field, value, salt }) of the fields the caller is a party to (the citizen its own subject, each agency its own code), none for anyone else (no credential needed for the proofs).',
    schema: {
      type: 'object',
      required: ['size', 'rootHex', 'proofs'],
      properties: {
        size: { type: 'integer' },
        rootHex: { type: 'string' },
        proofs: {
          type: 'array',
          items: {
            type: 'object',
            required: ['position', 'serial', 'envelope', 'leafHex', 'proof', 'openings'],
            properties: {
              position: { type: 'integer' },
              serial: { type: 'string' },
              envelope: { type: 'string', description: 'The stored canonical envelope text (the Merkle leaf input).' },
              leafHex: { type: 'string' },
              proof: HEX_LIST,
              openings: {
                type: 'array',
                items: { type: 'object', required: ['field', 'value', 'salt'], properties: { field: { type: 'string' }, value: {}, salt: { type: 'string' } } },
              },
            },
          },
        },
      },
    },
  })
  @ApiBearerAuth()
  @ApiProblems('VALIDATION_FAILED', 'SIZE_OUT_OF_RANGE', 'SERIAL_UNKNOWN', 'TREE_SIZE_NOT_REACHED', 'UNAUTHENTICATED', 'INTERNAL')
  async inclusion(@Query() q: InclusionQuery, @Req() request: Credentialed): Promise<unknown> {
    if ((q.position === undefined) === (q.serial === undefined)) throw new HubProblem('SIZE_OUT_OF_RANGE', 'give exactly one of position or serial');
    const tree = this.follower.projection;
    const size = q.size ?? tree.latestCheckpoint()?.size ?? tree.size;
    this.reached(size);
    const events =
      q.position !== undefined
        ? (await this.follower.envelopes(q.position, 1)).map((envelope) => ({ position: q.position!, envelope }))
        : await this.follower.serialEnvelopes(q.serial!);
    if (q.serial !== undefined && events.length === 0) throw new HubProblem('SERIAL_UNKNOWN', `no event carries serial ${q.serial}`);
    const last = events.at(-1)?.position ?? q.position!;
    if (last >= size || events.length === 0) {
      throw new HubProblem('SIZE_OUT_OF_RANGE', `position ${last} is not in a tree of size ${size}; ask for a size above ${last}`, { position: last, size });
    }
    const principal = await this.auth.principal(request);
    const openings = this.openings.forSerial(principal, events.map((e) => e.envelope));
    return {
      size,
      rootHex: toHex(tree.root(size)),
      proofs: events.map((e, i) => ({
        position: e.position,
        serial: (JSON.parse(e.envelope) as { serial: string }).serial,
        envelope: e.envelope,
        leafHex: toHex(leafHash(e.envelope)),
        proof: tree.inclusionProof(e.position, size).map(toHex),
        openings: openings[i]!,
      })),
    };
  }

  @Get('proofs/consistency')
  @ApiOperation({ summary: 'Consistency proof between two tree sizes (RFC 9162 §2.1.4).' })
  @ApiOkResponse({
    description: 'The two roots and the proof between them.',
    schema: {
      type: 'object',
      required: ['from', 'to', 'fromRootHex', 'toRootHex', 'proof'],
      properties: { from: { type: 'integer' }, to: { type: 'integer' }, fromRootHex: { type: 'string' }, toRootHex: { type: 'string' }, proof: HEX_LIST },
    },
  })
  @ApiProblems('VALIDATION_FAILED', 'SIZE_OUT_OF_RANGE', 'TREE_SIZE_NOT_REACHED', 'INTERNAL')
  consistency(@Query() q: ConsistencyQuery): unknown {
    if (q.from > q.to) throw new HubProblem('SIZE_OUT_OF_RANGE', `from (${q.from}) must not exceed to (${q.to})`, { from: q.from, to: q.to });
    this.reached(q.to);
    const tree = this.follower.projection;
    return { from: q.from, to: q.to, fromRootHex: toHex(tree.root(q.from)), toRootHex: toHex(tree.root(q.to)), proof: tree.consistencyProof(q.from, q.to).map(toHex) };
  }

  @Get('entries')
  @ApiOperation({ summary: 'Raw stored envelope texts from a position: exactly the Merkle leaf inputs.' })
  @ApiOkResponse({
    description: 'The stored envelope texts from `from`, up to `limit`, never past the durable head.',
    schema: {
      type: 'object',
      required: ['from', 'head', 'entries'],
      properties: { from: { type: 'integer' }, head: { type: 'integer', description: 'The number of durable events.' }, entries: { type: 'array', items: { type: 'string' } } },
    },
  })
  @ApiBearerAuth()
  @ApiProblems('VALIDATION_FAILED', 'UNAUTHENTICATED', 'FORBIDDEN', 'INTERNAL')
  async entries(@Query() q: EntriesQuery, @Req() request: Credentialed): Promise<unknown> {
    await this.auth.requireAuditor(request);
    // Head first: only durable events are listed.
    const head = await this.follower.logHead();
    const entries = q.from >= head ? [] : await this.follower.envelopes(q.from, Math.min(q.limit, head - q.from));
    return { from: q.from, head, entries };
  }

  private answer(c: CheckpointRecord, q: FormatQuery, reply: FastifyReply): unknown {
    if (q.format === 'json') return checkpointJson(this.signer.origin, c);
    void reply.header('content-type', TEXT);
    return c.note;
  }

  private size(text: string, what: string): number {
    if (!/^\d{1,15}$/.test(text)) throw new HubProblem('SIZE_OUT_OF_RANGE', `${what} must be a non-negative integer, got ${JSON.stringify(text)}`);
    return Number(text);
  }

  private reached(size: number): void {
    const treeSize = this.follower.projection.size;
    if (size > treeSize) throw new HubProblem('TREE_SIZE_NOT_REACHED', `the tree covers ${treeSize} events; size ${size} is not reached yet`, { treeSize });
  }
}
