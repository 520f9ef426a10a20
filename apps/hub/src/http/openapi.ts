import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';

export const DOCS_PATH = 'docs';
export const DOCS_JSON_PATH = 'docs/json';

/** Swagger UI at /docs, the OpenAPI document at /docs/json. */
export function setupOpenApi(app: INestApplication): void {
  const config = new DocumentBuilder()
    .setTitle('Linkage ledger hub')
    .setDescription(
      'The hub of the linkage ledger: individual and corporate numbering, and the auditors\' read of the append-only log. ' +
        'Every error is RFC 9457 problem+json with a stable `code`.',
    )
    .setVersion('0.1.0')
    .build();
  const document = SwaggerModule.createDocument(app, config);
  SwaggerModule.setup(DOCS_PATH, app, document, { jsonDocumentUrl: DOCS_JSON_PATH, yamlDocumentUrl: 'docs/yaml' });
}
