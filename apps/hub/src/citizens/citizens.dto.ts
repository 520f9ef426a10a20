import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, Matches, ValidateBy, type ValidationOptions } from 'class-validator';
import { DISPLAY_TEXT } from '#linkage';
import { IsLocalGovernmentCode, IsMyNumber } from '../http/identifier.validators.js';
import { IsDisplayText } from '../http/text.validators.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const B64URL = /^[A-Za-z0-9_-]{1,16384}$/;
/** A passkey's label: one line, at most 64 characters (e.g. "iPhone"). */
export const PASSKEY_LABEL_TEXT = { ...DISPLAY_TEXT, max: 64 };

/** What a WebAuthn response JSON must carry (as @simplewebauthn/browser hands it over), by kind. */
function webAuthnResponseProblem(value: unknown, kind: 'registration' | 'authentication'): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'must be the WebAuthn response JSON object';
  const v = value as Record<string, unknown>;
  if (typeof v['id'] !== 'string' || !B64URL.test(v['id']) || v['id'].length > 1366) return 'id must be the credential id, base64url';
  if (v['rawId'] !== v['id']) return 'rawId must equal id';
  if (v['type'] !== 'public-key') return 'type must be "public-key"';
  if (typeof v['clientExtensionResults'] !== 'object' || v['clientExtensionResults'] === null || Array.isArray(v['clientExtensionResults'])) return 'clientExtensionResults must be an object';
  const r = v['response'];
  if (typeof r !== 'object' || r === null || Array.isArray(r)) return 'response must be an object';
  const inner = r as Record<string, unknown>;
  const required = kind === 'registration' ? ['clientDataJSON', 'attestationObject'] : ['clientDataJSON', 'authenticatorData', 'signature'];
  for (const name of required) if (typeof inner[name] !== 'string' || !B64URL.test(inner[name])) return `response.${name} must be base64url`;
  if (kind === 'authentication' && inner['userHandle'] !== undefined && (typeof inner['userHandle'] !== 'string' || !B64URL.test(inner['userHandle']))) return 'response.userHandle must be base64url';
  if (kind === 'registration' && inner['transports'] !== undefined && (!Array.isArray(inner['transports']) || inner['transports'].length > 10 || !inner['transports'].every((t) => typeof t === 'string' && /^[a-z-]{1,20}$/.test(t)))) {
    return 'response.transports must be a list of transport names';
  }
  return undefined;
}

function IsWebAuthnResponse(kind: 'registration' | 'authentication', options?: ValidationOptions): PropertyDecorator {
  return ValidateBy({ name: 'isWebAuthnResponse', validator: { validate: (v: unknown) => webAuthnResponseProblem(v, kind) === undefined, defaultMessage: (a) => webAuthnResponseProblem(a?.value, kind) ?? 'is not valid' } }, options);
}

export class PasskeyOptionsRequest {}

export class PasskeyRegistrationOptionsResponse {
  @ApiProperty({ format: 'uuid', description: 'Send it back with the registration; valid 5 minutes, once.' }) challengeId!: string;
  @ApiProperty({ description: 'PublicKeyCredentialCreationOptionsJSON (WebAuthn Level 3): pass to navigator.credentials.create (e.g. @simplewebauthn/browser startRegistration).', type: 'object', additionalProperties: true })
  options!: Record<string, unknown>;
}

export class EnrolPasskeyRequest {
  @ApiProperty({ format: 'uuid', description: 'The challengeId of the registration options.' })
  @Matches(UUID, { message: 'must be the challengeId of the registration options (a UUID)' })
  challengeId!: string;

  @ApiProperty({ description: 'RegistrationResponseJSON as the browser produced it.', type: 'object', additionalProperties: true })
  @IsWebAuthnResponse('registration')
  response!: Record<string, unknown>;

  @ApiPropertyOptional({ description: 'A name for the passkey the citizen recognises, one line, at most 64 characters (sealed in the log).', example: 'iPhone' })
  @IsOptional()
  @IsDisplayText(PASSKEY_LABEL_TEXT)
  label?: string;
}

export class CitizenSessionResponse {
  @ApiProperty({ description: 'The session token (32 random bytes, base64url), shown once: send it as `authorization: Bearer <token>`. The hub keeps only its SHA-256.' }) token!: string;
  @ApiProperty({ format: 'date-time', description: 'When the session ends at the latest (HUB_CITIZEN_SESSION_MAX_SECONDS after it began); it ends earlier when unused for HUB_CITIZEN_SESSION_IDLE_SECONDS.' }) expiresAt!: string;
}

export class EnrolledPasskeyResponse {
  @ApiProperty({ description: '処理通番 of the CitizenPasskeyEnrolled event.' }) serial!: string;
  @ApiProperty({ format: 'uuid' }) passkeyId!: string;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ type: CitizenSessionResponse }) session!: CitizenSessionResponse;
}

export class SignInOptionsResponse {
  @ApiProperty({ format: 'uuid', description: 'Send it back with the sign-in; valid 5 minutes, once.' }) challengeId!: string;
  @ApiProperty({ description: 'PublicKeyCredentialRequestOptionsJSON (empty allowCredentials: discoverable passkeys).', type: 'object', additionalProperties: true })
  options!: Record<string, unknown>;
}

export class SignInRequest {
  @ApiProperty({ format: 'uuid', description: 'The challengeId of the sign-in options.' })
  @Matches(UUID, { message: 'must be the challengeId of the sign-in options (a UUID)' })
  challengeId!: string;

  @ApiProperty({ description: 'AuthenticationResponseJSON as the browser produced it.', type: 'object', additionalProperties: true })
  @IsWebAuthnResponse('authentication')
  response!: Record<string, unknown>;
}

export class SignedInResponse {
  @ApiProperty({ type: CitizenSessionResponse }) session!: CitizenSessionResponse;
  @ApiProperty({ format: 'uuid', description: 'The passkey signed in with.' }) passkeyId!: string;
}

export class PasskeyResponse {
  @ApiProperty({ format: 'uuid' }) passkeyId!: string;
  @ApiProperty({ nullable: true, type: String }) label!: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiPropertyOptional({ format: 'date-time', description: 'The last sign-in with it since the hub started.' }) lastUsedAt?: string;
}

export class PasskeysResponse {
  @ApiProperty({ type: [PasskeyResponse] }) passkeys!: PasskeyResponse[];
}

export class PasskeyPathParams {
  @Matches(UUID, { message: 'must be a passkeyId (a UUID)' })
  passkeyId!: string;
}

export class RemovedPasskeyResponse {
  @ApiProperty({ description: '処理通番 of the CitizenPasskeyRemoved event.' }) serial!: string;
  @ApiProperty({ format: 'uuid' }) passkeyId!: string;
  @ApiProperty({ format: 'date-time' }) removedAt!: string;
}

export class IssueEnrolmentSecretRequest {
  @ApiProperty({ description: 'The resident\'s 個人番号 (never stored).', example: '123456789018' })
  @IsMyNumber()
  individualNumber!: string;

  @ApiProperty({ description: 'The municipality issuing it (全国地方公共団体コード, 6 digits): the one that numbered the resident.', example: '012050' })
  @IsLocalGovernmentCode()
  municipalityCode!: string;

  @ApiProperty({ example: 'passkeys lost (device replaced), identity confirmed at the counter', description: 'Why; no personal data. Trimmed, 1–200 characters (sealed in the log).' })
  @IsDisplayText(DISPLAY_TEXT)
  reason!: string;
}

export class IssuedEnrolmentSecretResponse {
  @ApiProperty({ description: '処理通番 of the CitizenEnrolmentSecretIssued event.' }) serial!: string;
  @ApiProperty({ description: 'The new one-time enrolment secret, shown once: hand it to the resident. Every earlier secret, passkey and session of theirs no longer admits anyone.' }) enrolmentSecret!: string;
  @ApiProperty({ format: 'date-time' }) issuedAt!: string;
}
