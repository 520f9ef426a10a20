import { Inject } from '@nestjs/common';
import { Command, CommandHandler, EventBus, type ICommandHandler } from '@nestjs/cqrs';
import type { AppendResult, EventStore } from '#ledger';
import {
  agencyRegistryDecider,
  agencyStreamId,
  decideAgencyRegistry,
  type AgencyId,
  type AgencyRegistryCommand,
  type AgencyRegistryEvent,
  type AgencyRegistryState,
  type Evolvable,
} from '#linkage';
import { HubProblem } from '../../http/hub-problem.js';
import { EventsAppended } from '../../ledger/events-appended.event.js';
import { MunicipalityDirectory } from '../../municipalities/municipality-directory.js';
import type { Caller } from '../../ledger/idempotency.js';
import { loadStream, type Fold } from '../../ledger/load-stream.js';
import { hasCode, withRetries } from '../../ledger/retry.js';
import { CLOCK, LEDGER, type Clock } from '../../ledger/tokens.js';
import { newBearerToken, tokenDigest } from '../hub-secrets.js';

const registryFold: Fold<AgencyRegistryState, Evolvable<AgencyRegistryEvent>> = {
  initialState: agencyRegistryDecider.initialState,
  evolve: agencyRegistryDecider.evolve,
  types: new Set(['AgencyRegistered', 'AgencyUpdated', 'AgencyCredentialRotated', 'AgencyRevoked']),
};

export interface RegistryOutcome {
  readonly agencyId: string;
  readonly serial: string;
  /** A new bearer token, for registration and rotation; shown once. */
  readonly token?: string;
}

type RegistryChange =
  | { readonly type: 'register'; readonly name: string; readonly kind: string; readonly endpoint: string; readonly publicKey: string; readonly municipalityCode?: string }
  | { readonly type: 'update'; readonly name?: string; readonly endpoint?: string; readonly publicKey?: string }
  | { readonly type: 'rotate' }
  | { readonly type: 'revoke'; readonly reason: string };

/** A change to the agency registry (operator only): one event, one serial (I2). */
export class ChangeAgencyRegistryCommand extends Command<RegistryOutcome> {
  constructor(
    readonly agencyId: string,
    readonly change: RegistryChange,
    readonly caller: Caller,
  ) {
    super();
  }
}

@CommandHandler(ChangeAgencyRegistryCommand)
export class ChangeAgencyRegistryHandler implements ICommandHandler<ChangeAgencyRegistryCommand> {
  constructor(
    @Inject(LEDGER) private readonly store: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly eventBus: EventBus,
    private readonly municipalities: MunicipalityDirectory,
  ) {}

  async execute({ agencyId, change, caller }: ChangeAgencyRegistryCommand): Promise<RegistryOutcome> {
    const streamId = agencyStreamId(agencyId as AgencyId);
    const municipalityCode = change.type === 'register' ? change.municipalityCode : undefined;
    if (municipalityCode !== undefined && !this.municipalities.has(municipalityCode)) {
      throw new HubProblem('UNKNOWN_MUNICIPALITY', `municipality ${municipalityCode} is not in the municipality list in force; check the code or update the list`);
    }
    return withRetries(4, (e) => hasCode(e, 'WRONG_EXPECTED_REVISION'), async () => {
      const { state, expectedRevision } = await loadStream(this.store, streamId, registryFold);
      const at = this.clock().toISOString();
      const token = change.type === 'register' || change.type === 'rotate' ? newBearerToken() : undefined;
      const command = this.#command(agencyId, change, at, token);
      const events = decideAgencyRegistry(command, state);
      const result: AppendResult = await this.store
        .append({ streamId, expectedRevision, events, serial: { allocate: true }, metadata: { actor: caller.actor, correlationId: caller.correlationId } })
        .catch((error: unknown) => {
          // The credential claim cannot clash (a fresh 256-bit token): a clash is the municipality's.
          if (municipalityCode !== undefined && hasCode(error, 'CLAIM_CONFLICT')) {
            throw new HubProblem('MUNICIPALITY_ALREADY_REGISTERED', `another agency is already registered for municipality ${municipalityCode}`);
          }
          throw error;
        });
      this.eventBus.publish(EventsAppended.of(streamId, result, events.map((e) => e.type)));
      return { agencyId, serial: result.serial, ...(token === undefined ? {} : { token }) };
    });
  }

  #command(agencyId: string, change: RegistryChange, at: string, token: string | undefined): AgencyRegistryCommand {
    switch (change.type) {
      case 'register':
        return {
          type: 'RegisterAgency',
          data: {
            agencyId,
            name: change.name,
            kind: change.kind,
            endpoint: change.endpoint,
            publicKey: change.publicKey,
            credentialDigest: tokenDigest(token!),
            ...(change.municipalityCode === undefined ? {} : { municipalityCode: change.municipalityCode }),
            registeredAt: at,
          },
        };
      case 'update': {
        const { type: _type, ...fields } = change;
        return { type: 'UpdateAgency', data: { ...fields, updatedAt: at } };
      }
      case 'rotate':
        return { type: 'RotateAgencyCredential', data: { credentialDigest: tokenDigest(token!), rotatedAt: at } };
      case 'revoke':
        return { type: 'RevokeAgency', data: { reason: change.reason, revokedAt: at } };
      default: {
        const never: never = change;
        throw new Error(`unknown registry change ${JSON.stringify(never)}`);
      }
    }
  }
}
