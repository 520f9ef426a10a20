import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { documentRateLimits } from '../rate-limits/rate-limits.openapi.js';

export const DOCS_PATH = 'docs';
export const DOCS_JSON_PATH = 'docs/json';

/** The hub's OpenAPI document, generated from the application's controllers and DTOs. */
export function openApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('Linkage ledger hub')
    .setDescription(
      'The hub of the linkage ledger: individual and corporate numbering, and the auditors\' read of the append-only log. ' +
        'Every error is RFC 9457 problem+json with a stable `code`.',
    )
    .setVersion('0.1.0')
    // The scheme every @ApiBearerAuth() operation names (`bearer`): an agency's, auditor's or operator's token, or a citizen's session.
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'An agency, auditor or operator token, or a citizen session token.' }, 'bearer')
    .build();
  return documentRateLimits(SwaggerModule.createDocument(app, config));
}

/** Swagger UI at /docs, the OpenAPI document at /docs/json. */
export function setupOpenApi(app: INestApplication): void {
  SwaggerModule.setup(DOCS_PATH, app, openApiDocument(app), { jsonDocumentUrl: DOCS_JSON_PATH, yamlDocumentUrl: 'docs/yaml' });
}
