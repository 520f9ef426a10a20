import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import { AGENCY_KINDS, DISPLAY_TEXT, type AgencyKind, type AgencyRegistryState } from '#linkage';
import { IsLocalGovernmentCode } from '../../http/identifier.validators.js';
import { IsIntegerFrom, ToInteger } from '../../http/query.validators.js';
import { IsDisplayText } from '../../http/text.validators.js';

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
}

/** A certificate the hub's CA issued to an agency, with its key (shown once: the hub keeps only the fingerprint). */
export class IssuedCertificateResponse {
  @ApiProperty({ description: 'Lowercase hex SHA-256 of the certificate\'s DER: what the log records and the hub compares.' }) fingerprint!: string;
  @ApiProperty({ description: 'The certificate\'s serial number, hex.' }) serialNumber!: string;
  @ApiProperty({ format: 'date-time' }) notBefore!: string;
  @ApiProperty({ format: 'date-time' }) notAfter!: string;
  @ApiProperty({ description: 'PEM. SAN URI urn:linkage-ledger:agency:<agencyId> and the host of the registered endpoint; client and server auth.' }) certificatePem!: string;
  @ApiProperty({ description: 'PKCS#8 PEM of its ECDSA P-256 key. Shown once: the hub does not keep it.' }) privateKeyPem!: string;
  @ApiProperty({ description: 'PEM of the hub\'s CA: what the agency trusts for the hub and what the hub verifies it against.' }) caCertificatePem!: string;
}

export class RegisteredAgencyResponse {
  @ApiProperty() agencyId!: string;
  @ApiProperty({ description: '処理通番 of the registration.' }) serial!: string;
  @ApiProperty({ description: 'The agency\'s bearer token. Shown once: the hub keeps only its SHA-256.' }) token!: string;
  @ApiPropertyOptional({ type: () => IssuedCertificateResponse, description: 'With HUB_TLS=on: the agency\'s client and server certificate and its private key, shown once.' })
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
