import { Body, Controller, Get, HttpCode, HttpStatus, Param, Patch, Post, Query, Req } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import { ApiBearerAuth, ApiBody, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { HubProblem } from '../../http/hub-problem.js';
import { ApiProblems, BODY_PROBLEMS, COMMON_PROBLEMS } from '../../http/problem.dto.js';
import { Meta, type RequestMeta } from '../../http/request-meta.js';
import { DtoValidationPipe } from '../../http/validation.pipe.js';
import { Authenticator } from '../authenticator.js';
import { LinkageViews } from '../linkage-views.js';
import { ProvisionKeyRing, type ServedHubKeys } from '../../keys/provision-key-rotation.js';
import {
  AgencyCertificatesResponse,
  AgencyListQuery,
  IssuedCertificateSerialResponse,
  AgencyPageResponse,
  AgencyResponse,
  AgencySerialResponse,
  DEFAULT_AGENCY_PAGE,
  RegisterAgencyRequest,
  RegisteredAgencyResponse,
  RenewAgencyCertificateRequest,
  RevokeAgencyRequest,
  RotatedCredentialResponse,
  UpdateAgencyRequest,
  toAgencyResponse,
} from './agency.dto.js';
import { ChangeAgencyRegistryCommand } from './agency-registry.commands.js';
import { RecordsRefusals } from '../../refusals/refusal.guard.js';
import { AgencyCertificates, ChangeAgencyCertificatesCommand, type CertificateOutcome } from '../../tls/agency-certificates.js';
import { HubTls } from '../../tls/hub-tls.js';

const OPERATOR = 'operator:hub';

/** The refusals of a request's csr (docs/tls.md): checked before anything is recorded. */
const CSR_PROBLEMS = ['CSR_MALFORMED', 'CSR_KEY_NOT_ACCEPTED', 'CSR_SIGNATURE_INVALID', 'CSR_REQUIRED'] as const;

@ApiTags('agencies')
@Controller()
export class AgenciesController {
  constructor(
    private readonly commandBus: CommandBus,
    private readonly auth: Authenticator,
    private readonly views: LinkageViews,
    private readonly provisionKeys: ProvisionKeyRing,
    private readonly tls: HubTls,
    private readonly certificates: AgencyCertificates,
  ) {}

  #issued(outcome: CertificateOutcome): IssuedCertificateSerialResponse {
    const { issued } = outcome;
    if (issued === undefined || this.tls.ca === undefined) throw new Error('a certificate was expected');
    const { fingerprint, serialNumber, notBefore, notAfter, certificatePem, privateKeyPem } = issued;
    return {
      agencyId: outcome.agencyId,
      serial: outcome.serial,
      fingerprint,
      serialNumber,
      notBefore,
      notAfter,
      certificatePem,
      ...(privateKeyPem === undefined ? {} : { privateKeyPem }),
      keyOrigin: privateKeyPem === undefined ? 'agency' : 'hub',
      caCertificatePem: this.tls.ca.caCertificatePem,
    };
  }

  @Post('v1/agencies')
  @RecordsRefusals('RegisterAgency')
  @HttpCode(HttpStatus.CREATED)
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'Register an agency (operator).',
    description:
      'Returns the agency\'s bearer token once; the registry keeps only its SHA-256. With HUB_TLS=on also its certificate: of the key of its csr (the answer then holds no private key), or without a csr of a key the hub makes and answers once. A csr is checked before anything is recorded: a refused one registers nothing.',
  })
  @ApiCreatedResponse({ type: RegisteredAgencyResponse })
  @ApiProblems(...BODY_PROBLEMS, 'UNAUTHENTICATED', 'FORBIDDEN', 'CHECK_DIGIT_MISMATCH', 'INVALID_AGENCY_ID', 'UNKNOWN_AGENCY_KIND', 'INVALID_NAME', 'INVALID_ENDPOINT', 'INVALID_PUBLIC_KEY', 'AGENCY_ALREADY_REGISTERED', ...CSR_PROBLEMS, 'TLS_NOT_ENABLED', ...COMMON_PROBLEMS)
  async register(@Req() request: FastifyRequest, @Body() body: RegisterAgencyRequest, @Meta() meta: RequestMeta): Promise<RegisteredAgencyResponse> {
    this.auth.operator(request);
    // Before the registration is recorded: a refused CSR (or none under HUB_TLS_REQUIRE_CSR=on) registers nothing.
    const csr = await this.tls.csrOf(body.csr);
    const outcome = await this.commandBus.execute(
      new ChangeAgencyRegistryCommand(body.agencyId, { type: 'register', name: body.name, kind: body.kind, endpoint: body.endpoint, publicKey: body.publicKey, ...(body.municipalityCode === undefined ? {} : { municipalityCode: body.municipalityCode }) }, { actor: OPERATOR, ...meta }),
    );
    if (!this.tls.enabled) return { agencyId: outcome.agencyId, serial: outcome.serial, token: outcome.token! };
    // With TLS, the agency's certificate is issued with its registration (a command and serial of its own).
    const issued = await this.commandBus.execute(new ChangeAgencyCertificatesCommand(body.agencyId, { type: 'issue', occasion: 'registration', ...(csr === undefined ? {} : { csr }) }, { actor: OPERATOR, ...meta }));
    const { agencyId: _agencyId, serial: _serial, ...certificate } = this.#issued(issued);
    return { agencyId: outcome.agencyId, serial: outcome.serial, token: outcome.token!, certificate };
  }

  @Post('v1/agencies/:agencyId/certificates')
  @RecordsRefusals('RenewAgencyCertificate')
  @HttpCode(HttpStatus.CREATED)
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'Issue the agency a new certificate (operator; renewal): its earlier certificates stay valid until they end or are revoked.',
    description:
      'HUB_TLS=on only. With a csr in the body: a certificate of the key of the agency\'s certificate signing request, and no private key in the answer. With no body (or no csr): a key the hub makes, answered once (refused CSR_REQUIRED under HUB_TLS_REQUIRE_CSR=on). Recorded as AgencyCertificateIssued (v2: keyOrigin agency or hub).',
  })
  @ApiBody({ type: RenewAgencyCertificateRequest, required: false })
  @ApiCreatedResponse({ type: IssuedCertificateSerialResponse })
  @ApiProblems(...BODY_PROBLEMS, 'UNAUTHENTICATED', 'FORBIDDEN', 'AGENCY_NOT_REGISTERED', 'AGENCY_REVOKED', 'TLS_NOT_ENABLED', ...CSR_PROBLEMS, ...COMMON_PROBLEMS)
  async renewCertificate(@Req() request: FastifyRequest, @Param('agencyId') agencyId: string, @Body() raw: unknown, @Meta() meta: RequestMeta): Promise<IssuedCertificateSerialResponse> {
    this.auth.operator(request);
    // The body is optional (a renewal without a CSR sends none); one that is sent is validated like any other.
    const body = raw === undefined ? new RenewAgencyCertificateRequest() : (new DtoValidationPipe().transform(raw, { type: 'body', metatype: RenewAgencyCertificateRequest }) as RenewAgencyCertificateRequest);
    const csr = await this.tls.csrOf(body.csr);
    return this.#issued(await this.commandBus.execute(new ChangeAgencyCertificatesCommand(agencyId, { type: 'issue', occasion: 'renewal', ...(csr === undefined ? {} : { csr }) }, { actor: OPERATOR, ...meta })));
  }

  @Post('v1/agencies/:agencyId/certificates/:fingerprint/revocations')
  @RecordsRefusals('RevokeAgencyCertificate')
  @HttpCode(HttpStatus.CREATED)
  @ApiBearerAuth()
  @ApiOperation({ summary: 'Revoke one of the agency\'s certificates (operator): refused from the next request on. Recorded as AgencyCertificateRevoked.' })
  @ApiCreatedResponse({ type: AgencySerialResponse })
  @ApiProblems(...BODY_PROBLEMS, 'UNAUTHENTICATED', 'FORBIDDEN', 'AGENCY_NOT_REGISTERED', 'CERTIFICATE_NOT_FOUND', 'CERTIFICATE_ALREADY_REVOKED', 'TLS_NOT_ENABLED', ...COMMON_PROBLEMS)
  async revokeCertificate(
    @Req() request: FastifyRequest,
    @Param('agencyId') agencyId: string,
    @Param('fingerprint') fingerprint: string,
    @Body() body: RevokeAgencyRequest,
    @Meta() meta: RequestMeta,
  ): Promise<AgencySerialResponse> {
    this.auth.operator(request);
    const outcome = await this.commandBus.execute(new ChangeAgencyCertificatesCommand(agencyId, { type: 'revoke', fingerprint: fingerprint.toLowerCase(), reason: body.reason }, { actor: OPERATOR, ...meta }));
    return { agencyId: outcome.agencyId, serial: outcome.serial };
  }

  @Get('v1/agencies/:agencyId/certificates')
  @ApiOperation({ summary: 'The certificates the hub issued to an agency (public, as the log): fingerprint, serial, validity, status.' })
  @ApiOkResponse({ type: AgencyCertificatesResponse })
  @ApiProblems('AGENCY_NOT_REGISTERED', ...COMMON_PROBLEMS)
  async listCertificates(@Param('agencyId') agencyId: string): Promise<AgencyCertificatesResponse> {
    await this.views.catchUp();
    if (this.views.agency(agencyId).status === 'unregistered') throw new HubProblem('AGENCY_NOT_REGISTERED', `no agency is registered under id ${JSON.stringify(agencyId)}`);
    const certificates = await this.certificates.of(agencyId);
    return { certificates: certificates.map(({ fingerprint, serialNumber, notBefore, notAfter, status, keyOrigin }) => ({ fingerprint, serialNumber, notBefore, notAfter, status, keyOrigin: keyOrigin ?? 'hub' })) };
  }

  @Patch('v1/agencies/:agencyId')
  @RecordsRefusals('UpdateAgency')
  @ApiBearerAuth()
  @ApiOperation({ summary: 'Change an agency\'s name, endpoint or public key (operator).' })
  @ApiOkResponse({ type: AgencySerialResponse })
  @ApiProblems(...BODY_PROBLEMS, 'UNAUTHENTICATED', 'FORBIDDEN', 'AGENCY_NOT_REGISTERED', 'AGENCY_REVOKED', 'NOTHING_TO_UPDATE', 'INVALID_NAME', 'INVALID_ENDPOINT', 'INVALID_PUBLIC_KEY', ...COMMON_PROBLEMS)
  async update(@Req() request: FastifyRequest, @Param('agencyId') agencyId: string, @Body() body: UpdateAgencyRequest, @Meta() meta: RequestMeta): Promise<AgencySerialResponse> {
    this.auth.operator(request);
    const outcome = await this.commandBus.execute(new ChangeAgencyRegistryCommand(agencyId, { type: 'update', ...body }, { actor: OPERATOR, ...meta }));
    return { agencyId: outcome.agencyId, serial: outcome.serial };
  }

  @Post('v1/agencies/:agencyId/credential-rotations')
  @RecordsRefusals('RotateAgencyCredential')
  @HttpCode(HttpStatus.CREATED)
  @ApiBearerAuth()
  @ApiOperation({ summary: 'Issue a new bearer token to an agency (operator); the old one stops working at once.' })
  @ApiCreatedResponse({ type: RotatedCredentialResponse })
  @ApiProblems('UNAUTHENTICATED', 'FORBIDDEN', 'AGENCY_NOT_REGISTERED', 'AGENCY_REVOKED', ...COMMON_PROBLEMS)
  async rotate(@Req() request: FastifyRequest, @Param('agencyId') agencyId: string, @Meta() meta: RequestMeta): Promise<RotatedCredentialResponse> {
    this.auth.operator(request);
    const outcome = await this.commandBus.execute(new ChangeAgencyRegistryCommand(agencyId, { type: 'rotate' }, { actor: OPERATOR, ...meta }));
    return { agencyId: outcome.agencyId, serial: outcome.serial, token: outcome.token! };
  }

  @Post('v1/agencies/:agencyId/revocations')
  @RecordsRefusals('RevokeAgency')
  @HttpCode(HttpStatus.CREATED)
  @ApiBearerAuth()
  @ApiOperation({ summary: 'Revoke an agency (operator): it can no longer query, acquire codes or be queried.' })
  @ApiCreatedResponse({ type: AgencySerialResponse })
  @ApiProblems(...BODY_PROBLEMS, 'UNAUTHENTICATED', 'FORBIDDEN', 'AGENCY_NOT_REGISTERED', 'AGENCY_REVOKED', ...COMMON_PROBLEMS)
  async revoke(@Req() request: FastifyRequest, @Param('agencyId') agencyId: string, @Body() body: RevokeAgencyRequest, @Meta() meta: RequestMeta): Promise<AgencySerialResponse> {
    this.auth.operator(request);
    const outcome = await this.commandBus.execute(new ChangeAgencyRegistryCommand(agencyId, { type: 'revoke', reason: body.reason }, { actor: OPERATOR, ...meta }));
    return { agencyId: outcome.agencyId, serial: outcome.serial };
  }

  @Get('v1/agencies')
  @ApiOperation({
    summary: 'The participating agencies: id, name, kind, status and answer-encryption key, in agency id order, a page at a time (`next` → `after`).',
  })
  @ApiOkResponse({ type: AgencyPageResponse })
  @ApiProblems('VALIDATION_FAILED', ...COMMON_PROBLEMS)
  async list(@Query() query: AgencyListQuery): Promise<AgencyPageResponse> {
    await this.views.catchUp();
    const limit = query.limit ?? DEFAULT_AGENCY_PAGE;
    const after = query.after;
    const all = this.views
      .agencies()
      .flatMap((s) => (s.status === 'unregistered' || (after !== undefined && s.agency.agencyId <= after) ? [] : [toAgencyResponse(s)]))
      .sort((a, b) => (a.agencyId < b.agencyId ? -1 : a.agencyId > b.agencyId ? 1 : 0));
    const agencies = all.slice(0, limit);
    return { agencies, ...(all.length > limit ? { next: agencies[agencies.length - 1]!.agencyId } : {}) };
  }

  @Get('v1/agencies/:agencyId')
  @ApiOperation({ summary: 'One participating agency.' })
  @ApiOkResponse({ type: AgencyResponse })
  @ApiProblems('AGENCY_NOT_REGISTERED', ...COMMON_PROBLEMS)
  async get(@Param('agencyId') agencyId: string): Promise<AgencyResponse> {
    await this.views.catchUp();
    const state = this.views.agency(agencyId);
    if (state.status === 'unregistered') throw new HubProblem('AGENCY_NOT_REGISTERED', `no agency is registered under id ${JSON.stringify(agencyId)}`);
    return toAgencyResponse(state);
  }

  @Get('v1/hub/keys')
  @ApiOperation({
    summary: 'The hub\'s public keys: the Ed25519 keys that sign provision requests and pushes (hub-signature, hub-signature-key).',
    description: 'The key that signs now, and every provision signing key of the log, first to newest, read from the log at each call (docs/key-rotation.md). An intermediate server accepts a signature by a served key until its acceptedUntil, and fetches this again (bounded) when a call names a key it does not know.',
  })
  @ApiOkResponse({
    schema: {
      type: 'object',
      required: ['provisionSigningKey', 'provisionSigningKeyId', 'provisionSigningKeys'],
      properties: {
        provisionSigningKey: { type: 'string', description: 'The key that signs now: the raw 32-byte Ed25519 public key, base64url.' },
        provisionSigningKeyId: { type: 'string', description: 'Its id (hub-signature-key): SHA-256 of the raw public key, first 8 bytes, hex.' },
        provisionSigningKeys: {
          type: 'array',
          items: {
            type: 'object',
            required: ['keyId', 'publicKey'],
            properties: {
              keyId: { type: 'string' },
              publicKey: { type: 'string' },
              from: { type: 'string', format: 'date-time', description: 'Since when it signs.' },
              until: { type: 'string', format: 'date-time', description: 'When the next key replaced it (absent for the key that signs now).' },
              acceptedUntil: { type: 'string', format: 'date-time', description: 'Until when its signatures are accepted: until + 300 s.' },
              announcedAt: { type: 'integer', description: 'Position of the ProvisionSigningKeyRotated event (absent for the first key).' },
            },
          },
        },
      },
    },
  })
  keys(): Promise<ServedHubKeys> {
    return this.provisionKeys.served();
  }
}
