import { ApiProperty } from '@nestjs/swagger';
import { Matches } from 'class-validator';

const AGENCY_ID = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])$/;
const TABLE_CODE = /^(?=.{1,64}$)[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;
const X25519 = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;

export class NamedItem {
  @ApiProperty({ example: 'local-tax' }) code!: string;
  @ApiProperty({ example: '地方税関係情報' }) name!: string;
}

export class NamedAgency {
  @ApiProperty({ example: 'muroran-city' }) agencyId!: string;
  @ApiProperty({ example: '室蘭市' }) name!: string;
}

export class SelfInformationProvider {
  @ApiProperty({ example: 'muroran-city' }) agencyId!: string;
  @ApiProperty({ example: '室蘭市' }) name!: string;
  @ApiProperty({ type: [NamedItem], description: 'What this agency discloses to the person themself under the self-disclosure table in force.' }) items!: NamedItem[];
}

export class SelfInformationOptionsResponse {
  @ApiProperty({ type: [SelfInformationProvider], description: 'The active agencies that hold a code for the calling person and whose kind discloses items to them, by agency id.' })
  providers!: SelfInformationProvider[];
}

export class SelfInformationRequestBody {
  @ApiProperty({ description: 'The agency asked (one of the options).', example: 'muroran-city' })
  @Matches(AGENCY_ID, { message: 'must be an agency id: 2–64 lowercase letters, digits or hyphens' })
  providerAgencyId!: string;

  @ApiProperty({ description: 'The information item asked, an item code of the authorization table.', example: 'local-tax' })
  @Matches(TABLE_CODE, { message: 'must be an information item code, e.g. "local-tax"' })
  itemCode!: string;

  @ApiProperty({ description: 'The raw X25519 public key the browser generated for this request (32 bytes, 43 characters of unpadded base64url). The intermediate server seals the answer to it (HPKE, the serial as AAD): only the browser opens it.' })
  @Matches(X25519, { message: 'must be an X25519 public key: 32 bytes as unpadded base64url (43 characters)' })
  answerPublicKey!: string;
}

export class SelfInformationAnswer {
  @ApiProperty({ description: 'The sealed answer bytes (enc ‖ ciphertext), base64url: HPKE base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM, info "linkage-ledger/answer/v1", aad the serial. Opened, UTF-8 JSON {"items": {<itemCode>: <value>}}.' })
  data!: string;
  @ApiProperty({ enum: [true] }) encrypted!: boolean;
  @ApiProperty({ description: 'Hex SHA-256 of the bytes, as recorded (sealed) in ProvisionAnswered.' }) digest!: string;
  @ApiProperty() size!: number;
}

export class SelfInformationResponse {
  @ApiProperty({ description: '処理通番 of the request.', example: '20261204010000000042' }) serial!: string;
  @ApiProperty({ enum: ['answered'] }) outcome!: 'answered';
  @ApiProperty({ type: NamedAgency }) provider!: NamedAgency;
  @ApiProperty({ type: NamedItem }) item!: NamedItem;
  @ApiProperty({ type: SelfInformationAnswer }) answer!: SelfInformationAnswer;
}
