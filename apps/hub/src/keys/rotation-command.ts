import { HttpCode, HttpStatus, Post, applyDecorators } from '@nestjs/common';
import { ApiBearerAuth } from '@nestjs/swagger';
import type { RequestMeta } from '../http/request-meta.js';
import { RecordsRefusals } from '../refusals/refusal.guard.js';
import type { RotationMetadata } from './rotation.js';

/** The operator, as the actor of a rotation. */
export const OPERATOR_ACTOR = 'operator:hub';

/** The metadata of a rotation the operator asked for over HTTP. */
export function byOperator(meta: RequestMeta): RotationMetadata {
  return { actor: OPERATOR_ACTOR, correlationId: meta.correlationId };
}

/**
 * A rotation command's route: POST /v1/key-rotations/<path> (the controller's prefix), 201 Created, a
 * bearer token, and each refusal recorded as a RequestRefused event naming `command`. Its summary, answer
 * and problems are the route's own.
 */
export function RotationCommand(path: string, command: string): MethodDecorator {
  return applyDecorators(ApiBearerAuth(), HttpCode(HttpStatus.CREATED), RecordsRefusals(command), Post(path));
}
