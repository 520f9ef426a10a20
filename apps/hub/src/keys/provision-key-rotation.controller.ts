import { Controller, Req } from '@nestjs/common';
import { ApiCreatedResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiProblems } from '../http/problem.dto.js';
import { Meta, type RequestMeta } from '../http/request-meta.js';
import { Authenticator, type Credentialed } from '../linkage/authenticator.js';
import { ProvisionKeyRing, type ProvisionKeyRotation } from './provision-key-rotation.js';
import { RotationCommand, byOperator } from './rotation-command.js';

@ApiTags('keys')
@Controller('v1/key-rotations')
export class ProvisionKeyRotationController {
  constructor(
    private readonly auth: Authenticator,
    private readonly ring: ProvisionKeyRing,
  ) {}

  @RotationCommand('provision-signing', 'RotateProvisionSigningKey')
  @ApiOperation({
    summary: 'Rotate the provision signing key (operator).',
    description:
      'A new Ed25519 key, stored in the keys dir (0600) before it is announced by a public ProvisionSigningKeyRotated event (its own serial); it signs every provision request and push from then on, naming itself in hub-signature-key. GET /v1/hub/keys serves it with the previous keys (from, until, acceptedUntil): intermediate servers accept the previous key for 300 s after the rotation. On KurrentDB only the leader rotates. Not idempotent: each call rotates again. A refusal is a RequestRefused event.',
  })
  @ApiCreatedResponse({
    description: 'The new key and where the log announced it.',
    schema: {
      type: 'object',
      required: ['keyId', 'publicKey', 'previousKeyId', 'position', 'serial', 'rotatedAt', 'previousAcceptedUntil'],
      properties: {
        keyId: { type: 'string', description: '16 hex digits: SHA-256 of the raw public key, first 8 bytes.' },
        publicKey: { type: 'string', description: 'The raw 32-byte Ed25519 public key, base64url.' },
        previousKeyId: { type: 'string' },
        position: { type: 'integer' },
        serial: { type: 'string' },
        rotatedAt: { type: 'string', format: 'date-time' },
        previousAcceptedUntil: { type: 'string', format: 'date-time', description: 'Until when intermediate servers still accept the previous key.' },
      },
    },
  })
  @ApiProblems('UNAUTHENTICATED', 'FORBIDDEN', 'INTERNAL', 'SERVICE_UNAVAILABLE', 'NOT_LEADER')
  async rotate(@Req() request: Credentialed, @Meta() meta: RequestMeta): Promise<ProvisionKeyRotation> {
    this.auth.operator(request);
    return this.ring.rotate(byOperator(meta));
  }
}
