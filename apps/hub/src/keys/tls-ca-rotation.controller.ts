import { Body, Controller, Module, Req } from '@nestjs/common';
import { ApiCreatedResponse, ApiOperation, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { IsInt, IsOptional, Max, Min } from 'class-validator';
import { ApiProblems } from '../http/problem.dto.js';
import { Meta, type RequestMeta } from '../http/request-meta.js';
import { Authenticator, type Credentialed } from '../linkage/authenticator.js';
import { LinkageModule } from '../linkage/linkage.module.js';
import { RotationCommand, byOperator } from './rotation-command.js';
import { DEFAULT_OVERLAP_DAYS, TlsCaRotations, type TlsCaRotation } from './tls-ca-rotation.js';

export class TlsCaRotationRequest {
  @ApiPropertyOptional({ minimum: 0, maximum: 3650, default: DEFAULT_OVERLAP_DAYS, description: 'How many days certificates of the previous CA stay accepted (renew every agency within them). 0 ends the overlap at once.' })
  @IsOptional()
  @IsInt({ message: 'must be a whole number of days' })
  @Min(0)
  @Max(3650)
  overlapDays?: number;
}

/** The rotation of the hub's TLS CA key (docs/key-rotation.md, docs/tls.md). */
@ApiTags('key-rotations')
@Controller('v1/key-rotations')
export class TlsCaRotationController {
  constructor(
    private readonly auth: Authenticator,
    private readonly rotations: TlsCaRotations,
  ) {}

  @RotationCommand('tls-ca', 'RotateTlsCaKey')
  @ApiOperation({
    summary: 'Rotate the hub\'s TLS CA key (operator).',
    description:
      'A new CA key and certificate are stored in the keys dir (tls-ca.<fingerprint16>.key.json, 0600, created exclusively) before a public TlsCaKeyRotated event (its own serial) announces them. From then on the new CA issues every agency certificate (registration, renewal) and the hub\'s own server certificate, served at once without a restart (with the new CA certified by the previous one after it). Certificates of the previous CA stay accepted until overlapEndsAt; keys/tls-ca.bundle.pem holds every CA trusted now. On KurrentDB only the leader rotates (503 NOT_LEADER, nothing written). Not idempotent: each call rotates again. A refusal is a RequestRefused event.',
  })
  @ApiCreatedResponse({
    description: 'The rotation as the log records it (TlsCaKeyRotated).',
    schema: {
      type: 'object',
      required: ['caFingerprint', 'caSubject', 'caSerialNumber', 'previousCaFingerprint', 'overlapEndsAt', 'rotatedAt', 'serial', 'position'],
      properties: {
        caFingerprint: { type: 'string', description: 'SHA-256 of the new CA certificate\'s DER, lowercase hex.' },
        caSubject: { type: 'string' },
        caSerialNumber: { type: 'string' },
        previousCaFingerprint: { type: 'string' },
        overlapEndsAt: { type: 'string', format: 'date-time', description: 'Until when certificates of the previous CA are accepted.' },
        rotatedAt: { type: 'string', format: 'date-time' },
        serial: { type: 'string' },
        position: { type: 'integer' },
      },
    },
  })
  @ApiProblems('VALIDATION_FAILED', 'UNAUTHENTICATED', 'FORBIDDEN', 'TLS_NOT_ENABLED', 'INTERNAL', 'SERVICE_UNAVAILABLE', 'NOT_LEADER')
  async rotate(@Req() request: Credentialed, @Body() body: TlsCaRotationRequest, @Meta() meta: RequestMeta): Promise<TlsCaRotation> {
    this.auth.operator(request);
    return this.rotations.rotate(body.overlapDays ?? DEFAULT_OVERLAP_DAYS, byOperator(meta));
  }
}

@Module({
  imports: [LinkageModule],
  controllers: [TlsCaRotationController],
  providers: [TlsCaRotations],
})
export class TlsCaRotationModule {}
