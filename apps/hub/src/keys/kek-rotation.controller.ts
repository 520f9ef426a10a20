import { Body, Controller, Get, Module, Query, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { IsIn } from 'class-validator';
import { ApiProblems } from '../http/problem.dto.js';
import { Meta, type RequestMeta } from '../http/request-meta.js';
import { Authenticator, type Credentialed } from '../linkage/authenticator.js';
import { LinkageModule } from '../linkage/linkage.module.js';
import { KEK_NAMES, KekRotations, type KekName, type KekRotation, type KekStatus } from './kek-rotation.js';
import { RotationCommand, byOperator } from './rotation-command.js';

export class KekRotationRequest {
  @ApiProperty({ enum: KEK_NAMES, description: 'sealing: the key ring\'s KEK (keys/sealing.key.json), every person and period key re-wrapped; vault: the identifier vault\'s (keys/key-encryption.key.json), nothing re-wrapped (its wraps are inside log events).' })
  @IsIn(KEK_NAMES, { message: 'must be sealing or vault' })
  kek!: KekName;
}

export class KekStatusQuery {
  @ApiProperty({ enum: KEK_NAMES })
  @IsIn(KEK_NAMES, { message: 'must be sealing or vault' })
  kek!: KekName;
}

const IDS = { type: 'array', items: { type: 'string' } };
const ROTATION = {
  description: 'The rotation as the log records it (KeyEncryptionKeyRotated, its own serial).',
  schema: {
    type: 'object',
    required: ['kek', 'kekId', 'previousKekIds', 'rewrappedPersonKeys', 'rewrappedPeriodKeys', 'retiredKekIds', 'keptKekIds', 'rotatedAt', 'serial', 'position'],
    properties: {
      kek: { type: 'string', enum: KEK_NAMES },
      kekId: { type: 'string', description: 'The new KEK\'s id (its file: keys/sealing-kek.<id>.key.json or keys/key-encryption.<id>.key.json, 0600).' },
      previousKekIds: { ...IDS, description: 'The KEKs it replaced.' },
      rewrappedPersonKeys: { type: 'integer' },
      rewrappedPeriodKeys: { type: 'integer' },
      retiredKekIds: { ...IDS, description: 'Earlier KEKs deleted from the keys dir: no wrap names them any more.' },
      keptKekIds: { ...IDS, description: 'Earlier KEKs kept because wraps still name them (the vault\'s: for ever).' },
      rotatedAt: { type: 'string', format: 'date-time' },
      serial: { type: 'string' },
      position: { type: 'integer' },
    },
  },
};

const COUNTS = { type: 'object', additionalProperties: { type: 'integer' }, description: 'Live wraps per KEK id.' };
const STATUS = {
  description: 'The key-encryption keys of one kind the hub holds.',
  schema: {
    type: 'object',
    required: ['kek', 'kekId', 'heldKekIds'],
    properties: {
      kek: { type: 'string', enum: KEK_NAMES },
      kekId: { type: 'string', description: 'The KEK new wraps use.' },
      heldKekIds: { ...IDS, description: 'Every KEK id the hub holds, current first.' },
      wraps: {
        type: 'object',
        description: 'sealing: live wraps of the key ring per KEK id; a held KEK no count names is retired by the next rotation.',
        required: ['personKeys', 'periodKeys'],
        properties: { personKeys: COUNTS, periodKeys: COUNTS },
      },
      pending: {
        type: 'object',
        description: 'sealing: a re-wrap begun and not finished (a crash); the next start or rotation completes it.',
        required: ['kekId', 'previousKekIds', 'startedAt', 'rewrappedPersonKeys', 'rewrappedPeriodKeys'],
        properties: {
          kekId: { type: 'string' },
          previousKekIds: IDS,
          startedAt: { type: 'string', format: 'date-time' },
          rewrappedPersonKeys: { type: 'integer' },
          rewrappedPeriodKeys: { type: 'integer' },
        },
      },
      note: { type: 'string', description: 'vault: why the earlier KEKs stay.' },
    },
  },
};

/** The rotation of the hub's key-encryption keys (docs/key-rotation.md). */
@ApiTags('key-rotations')
@Controller('v1/key-rotations')
export class KekRotationController {
  constructor(
    private readonly auth: Authenticator,
    private readonly rotations: KekRotations,
  ) {}

  @RotationCommand('key-encryption', 'RotateKeyEncryptionKey')
  @ApiOperation({
    summary: 'Rotate a key-encryption key (operator): the key ring\'s (sealing) or the identifier vault\'s (vault).',
    description:
      'A new KEK is stored in the keys dir (0600, created exclusively) before anything is wrapped under it. sealing: every person and period key of the key ring is re-wrapped under it (in pages; the log is not touched), the earlier KEKs no wrap names any more are deleted from the keys dir, and a KeyEncryptionKeyRotated event is appended (public: ids and counts; its own serial). vault: new values are wrapped under it; the earlier KEKs stay (their wraps are inside log events). On KurrentDB only the leader rotates (503 NOT_LEADER, nothing written). Not idempotent: each call rotates again. A refusal is a RequestRefused event.',
  })
  @ApiCreatedResponse(ROTATION)
  @ApiProblems('VALIDATION_FAILED', 'UNAUTHENTICATED', 'FORBIDDEN', 'INTERNAL', 'SERVICE_UNAVAILABLE', 'NOT_LEADER')
  async rotate(@Req() request: Credentialed, @Body() body: KekRotationRequest, @Meta() meta: RequestMeta): Promise<KekRotation> {
    this.auth.operator(request);
    return this.rotations.rotate(body.kek, byOperator(meta));
  }

  @Get('key-encryption')
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'The key-encryption keys the hub holds (operator): the current one, the earlier ones, and (sealing) how many wraps of the key ring name each, and a re-wrap left pending by a crash.',
    description: 'sealing reads the whole key ring (one pass over its file: minutes at population scale). An earlier KEK no count names is retired by the next rotation; a pending re-wrap is completed at the next start.',
  })
  @ApiOkResponse(STATUS)
  @ApiProblems('VALIDATION_FAILED', 'UNAUTHENTICATED', 'FORBIDDEN', 'INTERNAL')
  status(@Req() request: Credentialed, @Query() q: KekStatusQuery): KekStatus {
    this.auth.operator(request);
    return this.rotations.status(q.kek);
  }
}

@Module({
  imports: [LinkageModule],
  controllers: [KekRotationController],
  providers: [KekRotations],
  exports: [KekRotations],
})
export class KekRotationModule {}
