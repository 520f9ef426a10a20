import { Module } from '@nestjs/common';
import { LinkageModule } from '../linkage/linkage.module.js';
import { EnrolPasskeyHandler, IssueEnrolmentSecretHandler, RemovePasskeyHandler } from './citizen-credentials.handlers.js';
import { CitizensController } from './citizens.controller.js';
import { PasskeyCeremonies } from './passkey-ceremonies.js';
import { WebAuthnChallenges } from './webauthn-challenges.js';

/** Citizens' passkeys and sessions (the sessions themselves live in LinkageModule, beside the Authenticator that admits them). */
@Module({
  imports: [LinkageModule],
  controllers: [CitizensController],
  providers: [WebAuthnChallenges, PasskeyCeremonies, EnrolPasskeyHandler, RemovePasskeyHandler, IssueEnrolmentSecretHandler],
})
export class CitizensModule {}
