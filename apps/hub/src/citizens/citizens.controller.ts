import { Body, Controller, Delete, Get, HttpCode, HttpStatus, Param, Post, Req } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import { ApiBearerAuth, ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import type { FastifyRequest } from 'fastify';
import { HubProblem } from '../http/hub-problem.js';
import { ApiProblems, BODY_PROBLEMS, COMMON_PROBLEMS } from '../http/problem.dto.js';
import { Meta, type RequestMeta } from '../http/request-meta.js';
import { Authenticator } from '../linkage/authenticator.js';
import { LinkageViews } from '../linkage/linkage-views.js';
import { RecordsRefusals, RecordsUnidentifiedRefusals } from '../refusals/refusal.guard.js';
import { EnrolPasskeyCommand, IssueEnrolmentSecretCommand, RemovePasskeyCommand } from './citizen-credentials.handlers.js';
import { CitizenSessions } from './citizen-sessions.js';
import {
  EnrolledPasskeyResponse,
  EnrolPasskeyRequest,
  IssuedEnrolmentSecretResponse,
  IssueEnrolmentSecretRequest,
  PasskeyOptionsRequest,
  PasskeyPathParams,
  PasskeyRegistrationOptionsResponse,
  PasskeysResponse,
  RemovedPasskeyResponse,
  SignedInResponse,
  SignInOptionsResponse,
  SignInRequest,
} from './citizens.dto.js';
import { PasskeyCeremonies } from './passkey-ceremonies.js';

const CITIZEN_AUTH = 'UNAUTHENTICATED' as const;

/**
 * Citizens' sign-in with passkeys (WebAuthn, verified by the hub; the portal only relays): enrolment with
 * the one-time secret issued with the number (which it retires), sign-in with a discoverable passkey,
 * hub-issued session tokens, the person's passkeys, and the municipality's new enrolment secret.
 */
@ApiTags('citizens')
@Controller('v1/citizens')
export class CitizensController {
  constructor(
    private readonly commandBus: CommandBus,
    private readonly auth: Authenticator,
    private readonly ceremonies: PasskeyCeremonies,
    private readonly sessions: CitizenSessions,
    private readonly views: LinkageViews,
  ) {}

  @Post('passkeys/registration-options')
  @RecordsRefusals('BeginPasskeyRegistration')
  @HttpCode(HttpStatus.OK)
  @ApiBearerAuth()
  @ApiOperation({ summary: 'Options for enrolling a passkey (WebAuthn registration), with a challenge valid 5 minutes, once.', description: 'Bearer: the enrolment secret (until a passkey retires it) or a session token. excludeCredentials lists the citizen\'s passkeys.' })
  @ApiOkResponse({ type: PasskeyRegistrationOptionsResponse })
  @ApiProblems(...BODY_PROBLEMS, CITIZEN_AUTH, 'CREDENTIAL_RETIRED', 'SESSION_EXPIRED', ...COMMON_PROBLEMS)
  async registrationOptions(@Req() request: FastifyRequest, @Body() _body: PasskeyOptionsRequest): Promise<PasskeyRegistrationOptionsResponse> {
    const subjectId = await this.auth.citizen(request);
    return (await this.ceremonies.registrationOptions(subjectId)) as unknown as PasskeyRegistrationOptionsResponse;
  }

  @Post('passkeys')
  @RecordsRefusals('EnrolCitizenPasskey')
  @HttpCode(HttpStatus.CREATED)
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'Enrol a passkey (the registration the hub verifies) and begin a session.',
    description: 'Appends CitizenPasskeyEnrolled (credential id, public key and label sealed). Enrolled with the enrolment secret, it retires that secret for good (401 CREDENTIAL_RETIRED afterwards).',
  })
  @ApiCreatedResponse({ type: EnrolledPasskeyResponse })
  @ApiProblems(...BODY_PROBLEMS, CITIZEN_AUTH, 'CREDENTIAL_RETIRED', 'SESSION_EXPIRED', 'PASSKEY_REGISTRATION_FAILED', 'CONCURRENT_MODIFICATION', ...COMMON_PROBLEMS)
  async enrol(@Req() request: FastifyRequest, @Body() body: EnrolPasskeyRequest, @Meta() meta: RequestMeta): Promise<EnrolledPasskeyResponse> {
    const { subjectId, via } = await this.auth.citizenCredential(request);
    return this.commandBus.execute(new EnrolPasskeyCommand(subjectId, via, body.challengeId, body.response as unknown as RegistrationResponseJSON, body.label, { actor: 'citizen', correlationId: meta.correlationId }));
  }

  @Post('sessions/options')
  @RecordsUnidentifiedRefusals('BeginCitizenSignIn')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({ summary: 'Options for signing in with a passkey (WebAuthn authentication), with a challenge valid 5 minutes, once.', description: 'No credential. Empty allowCredentials: the authenticator offers the citizen\'s discoverable passkey.' })
  @ApiOkResponse({ type: SignInOptionsResponse })
  @ApiProblems(...BODY_PROBLEMS, 'TOO_MANY_UNAUTHENTICATED_REQUESTS', ...COMMON_PROBLEMS)
  async signInOptions(@Body() _body: PasskeyOptionsRequest): Promise<SignInOptionsResponse> {
    return (await this.ceremonies.authenticationOptions()) as unknown as SignInOptionsResponse;
  }

  @Post('sessions')
  @RecordsUnidentifiedRefusals('SignInCitizen')
  @HttpCode(HttpStatus.CREATED)
  @ApiOperation({
    summary: 'Sign in with a passkey: the hub verifies the assertion and issues a session token.',
    description: 'No credential. An unknown or removed passkey, a bad signature, a wrong origin or relying party, or an unknown, used or expired challenge is 401 PASSKEY_VERIFICATION_FAILED (counted per source like every request without a valid credential).',
  })
  @ApiCreatedResponse({ type: SignedInResponse })
  @ApiProblems(...BODY_PROBLEMS, 'PASSKEY_VERIFICATION_FAILED', 'TOO_MANY_UNAUTHENTICATED_REQUESTS', ...COMMON_PROBLEMS)
  async signIn(@Body() body: SignInRequest): Promise<SignedInResponse> {
    return this.ceremonies.signIn(body.challengeId, body.response as unknown as AuthenticationResponseJSON);
  }

  @Delete('me/session')
  @RecordsRefusals('EndCitizenSession')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiBearerAuth()
  @ApiOperation({ summary: 'Sign out: the session token presented admits nothing afterwards.' })
  @ApiNoContentResponse({ description: 'Signed out.' })
  @ApiProblems(CITIZEN_AUTH, 'SESSION_EXPIRED', 'CREDENTIAL_RETIRED', 'FORBIDDEN', ...COMMON_PROBLEMS)
  async signOut(@Req() request: FastifyRequest): Promise<void> {
    const { via, digest } = await this.auth.citizenCredential(request);
    if (via !== 'session') throw new HubProblem('FORBIDDEN', 'this is the enrolment secret, not a session token: there is no session to end');
    this.sessions.end(digest);
  }

  @Get('me/passkeys')
  @ApiBearerAuth()
  @ApiOperation({ summary: 'The calling citizen\'s passkeys, oldest first.' })
  @ApiOkResponse({ type: PasskeysResponse })
  @ApiProblems(CITIZEN_AUTH, 'CREDENTIAL_RETIRED', 'SESSION_EXPIRED', ...COMMON_PROBLEMS)
  async passkeys(@Req() request: FastifyRequest): Promise<PasskeysResponse> {
    const subjectId = await this.auth.citizen(request);
    return {
      passkeys: this.views.citizenCredentials.passkeysOf(subjectId).map((p) => ({
        passkeyId: p.passkeyId,
        label: p.label ?? null,
        createdAt: p.createdAt,
        ...(p.lastUsedAt === undefined ? {} : { lastUsedAt: p.lastUsedAt }),
      })),
    };
  }

  @Delete('me/passkeys/:passkeyId')
  @RecordsRefusals('RemoveCitizenPasskey')
  @HttpCode(HttpStatus.OK)
  @ApiBearerAuth()
  @ApiOperation({ summary: 'Remove one of the calling citizen\'s passkeys: it signs in no more, and its sessions end.', description: 'Appends CitizenPasskeyRemoved.' })
  @ApiOkResponse({ type: RemovedPasskeyResponse })
  @ApiProblems('VALIDATION_FAILED', CITIZEN_AUTH, 'CREDENTIAL_RETIRED', 'SESSION_EXPIRED', 'UNKNOWN_PASSKEY', 'CONCURRENT_MODIFICATION', ...COMMON_PROBLEMS)
  async removePasskey(@Req() request: FastifyRequest, @Param() params: PasskeyPathParams, @Meta() meta: RequestMeta): Promise<RemovedPasskeyResponse> {
    const subjectId = await this.auth.citizen(request);
    return this.commandBus.execute(new RemovePasskeyCommand(subjectId, params.passkeyId, { actor: 'citizen', correlationId: meta.correlationId }));
  }

  @Post('enrolment-secrets')
  @RecordsRefusals('IssueEnrolmentSecret')
  @HttpCode(HttpStatus.CREATED)
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'Issue a resident a new one-time enrolment secret (operator, or the municipality\'s own agency).',
    description: 'For a resident who lost their passkeys: every passkey, session and earlier secret of theirs stops admitting anyone. Appends CitizenEnrolmentSecretIssued (the secret\'s digest sealed); the secret is shown once and never kept. Not idempotent: each request issues a new secret that replaces the last.',
  })
  @ApiCreatedResponse({ type: IssuedEnrolmentSecretResponse })
  @ApiProblems(...BODY_PROBLEMS, CITIZEN_AUTH, 'FORBIDDEN', 'CHECK_DIGIT_MISMATCH', 'UNKNOWN_INDIVIDUAL_NUMBER', 'CONCURRENT_MODIFICATION', ...COMMON_PROBLEMS)
  async issueEnrolmentSecret(@Req() request: FastifyRequest, @Body() body: IssueEnrolmentSecretRequest, @Meta() meta: RequestMeta): Promise<IssuedEnrolmentSecretResponse> {
    const actor = await this.auth.numbering(request, body.municipalityCode);
    return this.commandBus.execute(new IssueEnrolmentSecretCommand(body.individualNumber, body.municipalityCode, body.reason, { actor, correlationId: meta.correlationId }));
  }
}
