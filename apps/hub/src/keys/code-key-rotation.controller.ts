import { Controller, Req } from '@nestjs/common';
import { ApiCreatedResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiProblems } from '../http/problem.dto.js';
import { Meta, type RequestMeta } from '../http/request-meta.js';
import { Authenticator, type Credentialed } from '../linkage/authenticator.js';
import { CodeKeyRing, type CodeKeyRotation } from './code-key-rotation.js';
import { RotationCommand, byOperator } from './rotation-command.js';

@ApiTags('keys')
@Controller('v1/key-rotations')
export class CodeKeyRotationController {
  constructor(
    private readonly auth: Authenticator,
    private readonly ring: CodeKeyRing,
  ) {}

  @RotationCommand('code', 'RotateCodeKey')
  @ApiOperation({
    summary: 'Rotate the code key (operator).',
    description:
      'A new AES-128 code key of the next generation, stored in the keys dir (0600) before it is announced by a public CodeKeyRotated event (its own serial); it mints every agency code from then on, and codes minted before keep translating (one Redis read each, old and new). On KurrentDB only the leader rotates. Not idempotent: each call rotates again. A refusal is a RequestRefused event.',
  })
  @ApiCreatedResponse({
    description: 'The new key\'s id and generation, and where the log announced it.',
    schema: {
      type: 'object',
      required: ['keyId', 'previousKeyId', 'generation', 'rotatedAt', 'position', 'serial'],
      properties: {
        keyId: { type: 'string', description: '16 hex digits naming the key (never the key).' },
        previousKeyId: { type: 'string' },
        generation: { type: 'integer', description: 'The mark inside every code the key mints.' },
        rotatedAt: { type: 'string', format: 'date-time' },
        position: { type: 'integer' },
        serial: { type: 'string' },
      },
    },
  })
  @ApiProblems('UNAUTHENTICATED', 'FORBIDDEN', 'INTERNAL', 'SERVICE_UNAVAILABLE', 'NOT_LEADER')
  async rotate(@Req() request: Credentialed, @Meta() meta: RequestMeta): Promise<CodeKeyRotation> {
    this.auth.operator(request);
    return this.ring.rotate(byOperator(meta));
  }
}
