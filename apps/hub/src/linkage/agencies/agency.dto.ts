import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import { AGENCY_KINDS, DISPLAY_TEXT, type AgencyKind, type AgencyRegistryState } from '#linkage';
import { IsLocalGovernmentCode } from '../../http/identifier.validators.js';
import { CSR_MAX_LENGTH } from '../../tls/csr.js';
import { IsIntegerFrom, ToInteger } from '../../http/query.validators.js';
import { IsDisplayText } from '../../http/text.validators.js';

const CSR_DESCRIPTION =
  'The agency\'s certificate signing request (PKCS#10, RFC 2986), PEM `-----BEGIN CERTIFICATE REQUEST-----`, signed by its own ECDSA P-256 key (SHA-256, -384 or -512): the hub checks the signature (proof of possession) and certifies that key, so the answer carries no private key and the hub never holds one (`openssl req -new -key agency.key -subj /CN=<agencyId>`, or the intermediate server\'s `tls-request` command). The request\'s subject, extensions and attributes are ignored: the hub sets the certificate\'s subject, SAN, validity and usage. With HUB_TLS=on only (TLS_NOT_ENABLED otherwise). Without it the hub makes the key and answers it once (the demo path), unless HUB_TLS_REQUIRE_CSR=on (then CSR_REQUIRED). Refused before anything is recorded: CSR_MALFORMED, CSR_KEY_NOT_ACCEPTED (RSA of any size, other curves, Ed25519, …), CSR_SIGNATURE_INVALID.';

export class RegisterAgencyRequest {
  @ApiProperty({ description: 'Lowercase kebab-case id, 2–64 characters.', example: 'muroran-city' })
  @Matches(/^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])$/, { message: 'must be 2–64 lowercase letters, digits or hyphens, starting and ending with a letter or digit' })
  agencyId!: string;

  @ApiProperty({ example: '室蘭市', description: 'Trimmed, 1–200 characters, something visible, no control characters.' })
  @IsDisplayText(DISPLAY_TEXT)
  name!: string;

  @ApiProperty({ enum: AGENCY_KINDS, example: 'municipality' })
  @IsIn(AGENCY_KINDS, { message: `must be one of ${AGENCY_KINDS.join(', ')}` })
  kind!: AgencyKind;

  @ApiProperty({ description: 'Base URL of its intermediate server (中間サーバー): http(s):// or grpc(s)://.', example: 'http://127.0.0.1:8082' })
  @IsString()
  @MaxLength(2048)
  endpoint!: string;

  @ApiProperty({ description: 'X25519 public key, 32 bytes as unpadded base64url (43 characters): answers can be encrypted to it.' })
  @IsString()
  publicKey!: string;

  @ApiPropertyOptional({
    description: 'Municipalities only: their 全国地方公共団体コード (in the list in force). The agency may then issue and change the individual numbers of its residents with its own token. One agency per code.',
    example: '012050',
  })
  @IsOptional()
  @IsLocalGovernmentCode()
  municipalityCode?: string;

  @ApiPropertyOptional({ description: CSR_DESCRIPTION, maxLength: CSR_MAX_LENGTH, example: '-----BEGIN CERTIFICATE REQUEST-----\nMIH…\n-----END CERTIFICATE REQUEST-----\n' })
  @IsOptional()
  @IsString()
  @MaxLength(CSR_MAX_LENGTH)
  csr?: string;
}

/** The optional body of a renewal (POST /v1/agencies/{agencyId}/certificates): no body at all is a renewal without a CSR. */
export class RenewAgencyCertificateRequest {
  @ApiPropertyOptional({ description: CSR_DESCRIPTION, maxLength: CSR_MAX_LENGTH })
  @IsOptional()
  @IsString()
  @MaxLength(CSR_MAX_LENGTH)
  csr?: string;
}

/** A certificate the hub's CA issued to an agency, with the key the hub made when the request carried no CSR (shown once: the hub keeps only the fingerprint). */
export class IssuedCertificateResponse {
  @ApiProperty({ description: 'Lowercase hex SHA-256 of the certificate\'s DER: what the log records and the hub compares.' }) fingerprint!: string;
  @ApiProperty({ description: 'The certificate\'s serial number, hex.' }) serialNumber!: string;
  @ApiProperty({ format: 'date-time' }) notBefore!: string;
  @ApiProperty({ format: 'date-time' }) notAfter!: string;
  @ApiProperty({ description: 'PEM. SAN URI urn:linkage-ledger:agency:<agencyId> and the host of the registered endpoint; client and server auth.' }) certificatePem!: string;
  @ApiPropertyOptional({ description: 'Only when the request carried no csr: PKCS#8 PEM of the ECDSA P-256 key the hub made. Shown once: the hub does not keep it. Absent when the hub certified the key of the agency\'s CSR (the agency holds the only copy).' }) privateKeyPem?: string;
  @ApiProperty({ enum: ['agency', 'hub'], description: 'Who made the private key: agency (the hub certified the key of its CSR) or hub (made here, in privateKeyPem). Recorded in AgencyCertificateIssued v2.' }) keyOrigin!: 'agency' | 'hub';
  @ApiProperty({ description: 'PEM of the hub\'s CA: what the agency trusts for the hub and what the hub verifies it against.' }) caCertificatePem!: string;
}

export class RegisteredAgencyResponse {
  @ApiProperty() agencyId!: string;
  @ApiProperty({ description: '処理通番 of the registration.' }) serial!: string;
  @ApiProperty({ description: 'The agency\'s bearer token. Shown once: the hub keeps only its SHA-256.' }) token!: string;
  @ApiPropertyOptional({ type: () => IssuedCertificateResponse, description: 'With HUB_TLS=on: the agency\'s client and server certificate, and its private key (shown once) only when the request carried no csr.' })
  certificate?: IssuedCertificateResponse;
}

export class IssuedCertificateSerialResponse extends IssuedCertificateResponse {
  @ApiProperty() agencyId!: string;
  @ApiProperty({ description: '処理通番 of the issue.' }) serial!: string;
}

export class AgencyCertificateResponse {
  @ApiProperty() fingerprint!: string;
  @ApiProperty() serialNumber!: string;
  @ApiProperty({ format: 'date-time' }) notBefore!: string;
  @ApiProperty({ format: 'date-time' }) notAfter!: string;
  @ApiProperty({ enum: ['issued', 'revoked'] }) status!: string;
  @ApiProperty({ enum: ['agency', 'hub'], description: 'Who made its private key: agency (certified from its CSR) or hub (made at issue and answered once; every certificate before CSRs).' }) keyOrigin!: string;
}

export class AgencyCertificatesResponse {
  @ApiProperty({ type: [AgencyCertificateResponse], description: 'Every certificate the hub issued to the agency, in issue order.' }) certificates!: AgencyCertificateResponse[];
}

export class RevokeAgencyRequest {
  @ApiProperty({ example: 'merged into another municipality', description: 'Trimmed, 1–200 characters, something visible, no control characters.' })
  @IsDisplayText(DISPLAY_TEXT)
  reason!: string;
}

export class UpdateAgencyRequest {
  @ApiPropertyOptional({ description: 'Trimmed, 1–200 characters, something visible, no control characters.' }) @IsOptional() @IsDisplayText(DISPLAY_TEXT) name?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(2048) endpoint?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() publicKey?: string;
}

export class AgencyResponse {
  @ApiProperty() agencyId!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ enum: AGENCY_KINDS }) kind!: string;
  @ApiProperty({ enum: ['active', 'revoked'] }) status!: string;
  @ApiProperty({ description: 'X25519 public key (base64url).' }) publicKey!: string;
  @ApiProperty({ format: 'date-time' }) registeredAt!: string;
}

export const DEFAULT_AGENCY_PAGE = 100;
export const MAX_AGENCY_PAGE = 1000;
const AGENCY_ID = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])$/;

export class AgencyListQuery {
  @ApiPropertyOptional({ description: `Agencies per page, 1–${MAX_AGENCY_PAGE}.`, default: DEFAULT_AGENCY_PAGE })
  @IsOptional()
  @ToInteger()
  @IsIntegerFrom(1, MAX_AGENCY_PAGE)
  limit?: number;

  @ApiPropertyOptional({ description: 'The `next` of the previous page: the page starts after this agency id.', example: 'muroran-city' })
  @IsOptional()
  @Matches(AGENCY_ID, { message: 'must be the `next` value of the previous page, unchanged (an agency id)' })
  after?: string;
}

export class AgencyPageResponse {
  @ApiProperty({ type: [AgencyResponse], description: 'In agency id order.' }) agencies!: AgencyResponse[];
  @ApiPropertyOptional({ description: 'Present when more agencies follow: pass it as `after` for the next page.' }) next?: string;
}

export class AgencySerialResponse {
  @ApiProperty() agencyId!: string;
  @ApiProperty() serial!: string;
}

export class RotatedCredentialResponse extends AgencySerialResponse {
  @ApiProperty({ description: 'The new bearer token; the previous one stops working now. Shown once.' }) token!: string;
}

/** The registry's public facts about an agency: never its credential digest or endpoint. */
export function toAgencyResponse(state: Exclude<AgencyRegistryState, { status: 'unregistered' }>): AgencyResponse {
  const a = state.agency;
  return { agencyId: a.agencyId, name: a.name, kind: a.kind, status: state.status, publicKey: a.publicKey, registeredAt: a.registeredAt };
}
