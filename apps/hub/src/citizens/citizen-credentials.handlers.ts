import { Inject } from '@nestjs/common';
import { Command, CommandHandler, EventBus, type ICommandHandler } from '@nestjs/cqrs';
import { randomUUID } from 'node:crypto';
import type { RegistrationResponseJSON } from '@simplewebauthn/server';
import type { EventStore, RecordedEvent } from '#ledger';
import type { SubjectId } from '#linkage';
import { EventSealer } from '#sealing';
import { HubProblem } from '../http/hub-problem.js';
import { EventsAppended } from '../ledger/events-appended.event.js';
import type { Caller } from '../ledger/idempotency.js';
import { loadStream, type Fold } from '../ledger/load-stream.js';
import { hasCode, withRetries } from '../ledger/retry.js';
import { CLOCK, LEDGER, type Clock } from '../ledger/tokens.js';
import { newBearerToken, tokenDigest } from '../linkage/hub-secrets.js';
import { LinkageViews } from '../linkage/linkage-views.js';
import { IdentifierVault } from '../vault/identifier-vault.js';
import {
  CITIZEN_CREDENTIALS_HANDLE,
  CITIZEN_CREDENTIAL_TYPES,
  CitizenCredentialError,
  citizenCredentialsStreamId,
  decideCitizenCredentials,
  evolveCitizenCredentials,
  initialCitizenCredentials,
  type CitizenCredentialCommand,
  type CitizenCredentialEvent,
  type CitizenCredentialsState,
} from './citizen-credentials.decider.js';
import { CitizenSessions } from './citizen-sessions.js';
import { PasskeyCeremonies } from './passkey-ceremonies.js';

const ATTEMPTS = 8;

const fold: Fold<CitizenCredentialsState, CitizenCredentialEvent> = {
  initialState: initialCitizenCredentials,
  evolve: evolveCitizenCredentials,
  types: CITIZEN_CREDENTIAL_TYPES,
};

/** Shared by the three commands: load the person's stream, decide, append under a new serial, publish. */
abstract class CitizenCredentialsHandler {
  constructor(
    protected readonly store: EventStore,
    protected readonly eventBus: EventBus,
    protected readonly sealer: EventSealer,
  ) {}

  protected streamOf(subjectId: string): string {
    return citizenCredentialsStreamId(this.sealer.handle(CITIZEN_CREDENTIALS_HANDLE, subjectId));
  }

  protected async decideAndAppend(subjectId: string, command: (state: CitizenCredentialsState) => CitizenCredentialCommand, caller: Caller): Promise<{ serial: string; event: RecordedEvent | undefined; state: CitizenCredentialsState }> {
    const streamId = this.streamOf(subjectId);
    return withRetries(ATTEMPTS, (e) => hasCode(e, 'WRONG_EXPECTED_REVISION'), async () => {
      const { state, expectedRevision } = await loadStream(this.store, streamId, fold);
      let events;
      try {
        events = decideCitizenCredentials(command(state), state);
      } catch (error) {
        if (error instanceof CitizenCredentialError) throw new HubProblem(error.code, error.message);
        throw error;
      }
      const result = await this.store.append({ streamId, expectedRevision, events, serial: { allocate: true }, metadata: { actor: caller.actor, correlationId: caller.correlationId } });
      this.eventBus.publish(EventsAppended.of(streamId, result, events.map((e) => e.type)));
      return { serial: result.serial, event: undefined, state };
    });
  }
}

export interface EnrolledPasskey {
  readonly serial: string;
  readonly passkeyId: string;
  readonly createdAt: string;
  readonly session: { readonly token: string; readonly expiresAt: string };
}

export class EnrolPasskeyCommand extends Command<EnrolledPasskey> {
  constructor(
    readonly subjectId: SubjectId,
    readonly via: 'enrolment-secret' | 'session',
    readonly challengeId: string,
    readonly response: RegistrationResponseJSON,
    readonly label: string | undefined,
    readonly caller: Caller,
  ) {
    super();
  }
}

/**
 * Enrols a passkey: the registration ceremony verified against the person's challenge, one
 * CitizenPasskeyEnrolled event (retiring the enrolment secret when it was the credential), and a session.
 */
@CommandHandler(EnrolPasskeyCommand)
export class EnrolPasskeyHandler extends CitizenCredentialsHandler implements ICommandHandler<EnrolPasskeyCommand> {
  constructor(
    @Inject(LEDGER) store: EventStore,
    eventBus: EventBus,
    sealer: EventSealer,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly ceremonies: PasskeyCeremonies,
    private readonly sessions: CitizenSessions,
    private readonly views: LinkageViews,
  ) {
    super(store, eventBus, sealer);
  }

  async execute({ subjectId, via, challengeId, response, label, caller }: EnrolPasskeyCommand): Promise<EnrolledPasskey> {
    const { credential } = await this.ceremonies.verifyRegistration(subjectId, challengeId, response);
    const passkeyId = randomUUID();
    const createdAt = this.clock().toISOString();
    const { serial } = await this.decideAndAppend(
      subjectId,
      () => ({ type: 'EnrolPasskey', data: { subjectId, passkeyId, credential, ...(label === undefined ? {} : { label }), secretRetired: via === 'enrolment-secret', enrolledAt: createdAt } }),
      caller,
    );
    // The session below lives only while the passkey is the person's: the views must know it first.
    await this.views.catchUp();
    return { serial, passkeyId, createdAt, session: this.sessions.begin(subjectId, credential.id) };
  }
}

export interface RemovedPasskey {
  readonly serial: string;
  readonly passkeyId: string;
  readonly removedAt: string;
}

export class RemovePasskeyCommand extends Command<RemovedPasskey> {
  constructor(
    readonly subjectId: SubjectId,
    readonly passkeyId: string,
    readonly caller: Caller,
  ) {
    super();
  }
}

/** Removes one of the person's passkeys (CitizenPasskeyRemoved): it signs in no more, its sessions end. */
@CommandHandler(RemovePasskeyCommand)
export class RemovePasskeyHandler extends CitizenCredentialsHandler implements ICommandHandler<RemovePasskeyCommand> {
  constructor(
    @Inject(LEDGER) store: EventStore,
    eventBus: EventBus,
    sealer: EventSealer,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {
    super(store, eventBus, sealer);
  }

  async execute({ subjectId, passkeyId, caller }: RemovePasskeyCommand): Promise<RemovedPasskey> {
    const removedAt = this.clock().toISOString();
    const { serial } = await this.decideAndAppend(subjectId, () => ({ type: 'RemovePasskey', data: { subjectId, passkeyId, removedAt } }), caller);
    return { serial, passkeyId, removedAt };
  }
}

export interface IssuedEnrolmentSecret {
  readonly serial: string;
  readonly enrolmentSecret: string;
  readonly issuedAt: string;
}

export class IssueEnrolmentSecretCommand extends Command<IssuedEnrolmentSecret> {
  constructor(
    readonly individualNumber: string,
    readonly municipalityCode: string,
    readonly reason: string,
    readonly caller: Caller,
  ) {
    super();
  }
}

/**
 * A new one-time enrolment secret for a resident who lost their passkeys (the municipality's counter):
 * CitizenEnrolmentSecretIssued revokes every passkey and session of the person and every earlier secret.
 * The secret is handed over once; the log keeps only its digest, sealed.
 */
@CommandHandler(IssueEnrolmentSecretCommand)
export class IssueEnrolmentSecretHandler extends CitizenCredentialsHandler implements ICommandHandler<IssueEnrolmentSecretCommand> {
  constructor(
    @Inject(LEDGER) store: EventStore,
    eventBus: EventBus,
    sealer: EventSealer,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly views: LinkageViews,
    private readonly vault: IdentifierVault,
  ) {
    super(store, eventBus, sealer);
  }

  async execute({ individualNumber, municipalityCode, reason, caller }: IssueEnrolmentSecretCommand): Promise<IssuedEnrolmentSecret> {
    await this.views.catchUp();
    const holder = this.views.holderOf(this.vault.digest('individual-number', individualNumber));
    // A number replaced, erased, never issued, or of another municipality's resident: the same answer.
    if (holder === undefined || !holder.current || (holder.municipalityCode !== undefined && holder.municipalityCode !== municipalityCode)) {
      throw new HubProblem('UNKNOWN_INDIVIDUAL_NUMBER', `no resident of municipality ${municipalityCode} holds this individual number`);
    }
    const enrolmentSecret = newBearerToken();
    const issuedAt = this.clock().toISOString();
    const { serial } = await this.decideAndAppend(
      holder.subjectId,
      () => ({ type: 'IssueEnrolmentSecret', data: { subjectId: holder.subjectId, credentialDigest: tokenDigest(enrolmentSecret), municipalityCode, reason, issuedAt } }),
      caller,
    );
    return { serial, enrolmentSecret, issuedAt };
  }
}
