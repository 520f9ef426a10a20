import { Controller, Global, Module, Req } from '@nestjs/common';
import { ApiCreatedResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiProblems } from '../http/problem.dto.js';
import { Meta, type RequestMeta } from '../http/request-meta.js';
import { Authenticator, type Credentialed } from '../linkage/authenticator.js';
import { LinkageModule } from '../linkage/linkage.module.js';
import { PrincipalCredentials, type PrincipalCredentialRotation } from './credential-rotation.js';
import { RotationCommand } from './rotation-command.js';

const FINGERPRINT = { type: 'string', pattern: '^[0-9a-f]{32}$' };
const ROTATION = {
  description: 'The rotation as the log records it (PrincipalCredentialRotated), and the new token once, to the principal it belongs to.',
  schema: {
    type: 'object',
    required: ['principal', 'fingerprint', 'previousFingerprint', 'rotatedAt', 'rotatedBy', 'serial', 'position', 'tokenFile'],
    properties: {
      principal: { type: 'string', enum: ['operator', 'auditor'] },
      fingerprint: { ...FINGERPRINT, description: 'Public fingerprint of the new token (docs/key-rotation.md), not the digest the hub compares.' },
      previousFingerprint: { ...FINGERPRINT, description: 'Fingerprint of the token it replaced, refused from now on (401 CREDENTIAL_ROTATED).' },
      rotatedAt: { type: 'string', format: 'date-time' },
      rotatedBy: { type: 'string', enum: ['operator', 'auditor'] },
      serial: { type: 'string' },
      position: { type: 'integer' },
      tokenFile: { type: 'string', description: 'The file of the hub\'s keys dir that holds the new token (0600).' },
      token: { type: 'string', description: 'The new bearer token: answered only when the caller rotated its own credential.' },
    },
  },
};
const DESCRIPTION =
  'A new token (32 random bytes) is written to the keys dir (0600, atomically replacing the file) and a PrincipalCredentialRotated event (public: fingerprints, who, when; its own serial) is appended; the old token is refused at once with 401 CREDENTIAL_ROTATED, at every hub that shares the log and the keys dir. On KurrentDB only the leader rotates (503 NOT_LEADER, nothing written). Not idempotent: each call rotates again. A refusal is a RequestRefused event. docs/key-rotation.md.';

/** The operator's and the auditor's credential rotations (docs/key-rotation.md). */
@ApiTags('key-rotations')
@Controller('v1/key-rotations')
export class CredentialRotationController {
  constructor(
    private readonly auth: Authenticator,
    private readonly credentials: PrincipalCredentials,
  ) {}

  @RotationCommand('operator-credential', 'RotateOperatorCredential')
  @ApiOperation({ summary: 'Rotate the operator\'s bearer token (operator): answers the new one once.', description: DESCRIPTION })
  @ApiCreatedResponse(ROTATION)
  @ApiProblems('UNAUTHENTICATED', 'CREDENTIAL_ROTATED', 'FORBIDDEN', 'INTERNAL', 'SERVICE_UNAVAILABLE', 'NOT_LEADER')
  async rotateOperator(@Req() request: Credentialed, @Meta() meta: RequestMeta): Promise<PrincipalCredentialRotation> {
    this.auth.operator(request);
    return this.credentials.rotate('operator', 'operator', meta);
  }

  @RotationCommand('auditor-credential', 'RotateAuditorCredential')
  @ApiOperation({
    summary: 'Rotate the auditor\'s bearer token (the auditor, or the operator to cut off a leaked one): the new token is answered only to the auditor.',
    description: `${DESCRIPTION} Rotated by the operator, the new token is only in keys/auditor.token.json, for the auditor to be given out of band.`,
  })
  @ApiCreatedResponse(ROTATION)
  @ApiProblems('UNAUTHENTICATED', 'CREDENTIAL_ROTATED', 'FORBIDDEN', 'INTERNAL', 'SERVICE_UNAVAILABLE', 'NOT_LEADER')
  async rotateAuditor(@Req() request: Credentialed, @Meta() meta: RequestMeta): Promise<PrincipalCredentialRotation> {
    const by = await this.auth.auditorOrOperator(request);
    return this.credentials.rotate('auditor', by, meta);
  }
}

/**
 * The operator's and auditor's credentials (global: the Authenticator of the linkage module admits
 * tokens with them) and their rotation commands.
 */
@Global()
@Module({
  imports: [LinkageModule],
  controllers: [CredentialRotationController],
  providers: [PrincipalCredentials],
  exports: [PrincipalCredentials],
})
export class CredentialRotationModule {}
