import { Inject } from '@nestjs/common';
import { CommandHandler, EventBus, type ICommandHandler } from '@nestjs/cqrs';
import type { EventStore, SerialNumber } from '#ledger';
import {
  corporateNumberStreamId,
  decideCorporateNumber,
  validateCorporateNumber,
  valueOrThrow,
  type CorporateNumber,
  type CorporateNumberChangedData,
  type CorporateNumberClosedData,
  type CorporateNumberCommand,
  type CorporateNumberEvent,
  type CorporateNumberState,
  type Evolvable,
} from '#numbering';
import { appendDecided, IdempotencyKeys, replayOrRethrow, type Caller, type Outcome } from '../../ledger/idempotency.js';
import { loadStream } from '../../ledger/load-stream.js';
import { hasCode, withRetries } from '../../ledger/retry.js';
import { CLOCK, LEDGER, type Clock } from '../../ledger/tokens.js';
import { corporateNumberFold } from '../corporate-number.fold.js';
import {
  ChangeCorporateNumberCommand,
  CloseCorporateNumberCommand,
  type ChangedCorporateNumber,
  type ClosedCorporateNumber,
} from './corporate-number-record.command.js';
import { eventOfSerial } from './replay.js';

const ATTEMPTS = 8;

/** Load the corporation's stream, decide, append under a new serial (retried on a concurrent append); a retry with the same key answers the first outcome. */
async function decideAndAppend<T>(
  deps: { store: EventStore; eventBus: EventBus; idempotencyKeys: IdempotencyKeys },
  number: string,
  caller: Caller,
  body: Readonly<Record<string, unknown>>,
  command: (corporateNumber: CorporateNumber) => CorporateNumberCommand,
  fresh: (serial: SerialNumber, event: CorporateNumberEvent, before: CorporateNumberState) => T,
  replay: (serial: SerialNumber) => Promise<T>,
): Promise<Outcome<T>> {
  const idempotency = deps.idempotencyKeys.scope(caller, body);
  try {
    // CHECK_DIGIT_MISMATCH (with both digits) before any read: a typo is not "unknown".
    const corporateNumber = valueOrThrow(validateCorporateNumber(number));
    return await withRetries(ATTEMPTS, (e) => hasCode(e, 'WRONG_EXPECTED_REVISION'), async () => {
      const streamId = corporateNumberStreamId(corporateNumber);
      const { state, expectedRevision } = await loadStream(deps.store, streamId, corporateNumberFold);
      const events = decideCorporateNumber(command(corporateNumber), state);
      return appendDecided(deps.store, deps.eventBus, { streamId, expectedRevision, events, caller, idempotency }, (result) => fresh(result.serial, events[0]!, state), replay);
    });
  } catch (error) {
    return replayOrRethrow(error, deps.store, idempotency, replay);
  }
}

/** The name and location before the command (a change names only what it changes). */
function currentOf(state: CorporateNumberState): { name: string; location: string } {
  return state.status === 'designated' ? { name: state.name, location: state.location } : { name: '', location: '' };
}

function changedOf(serial: SerialNumber, d: CorporateNumberChangedData, current: { name: string; location: string }): ChangedCorporateNumber {
  return {
    serial,
    corporateNumber: d.corporateNumber,
    name: d.name?.current ?? current.name,
    location: d.location?.current ?? current.location,
    changed: [...(d.name === undefined ? [] : ['name' as const]), ...(d.location === undefined ? [] : ['location' as const])],
    effectiveOn: d.effectiveOn,
    changedAt: d.changedAt,
  };
}

@CommandHandler(ChangeCorporateNumberCommand)
export class ChangeCorporateNumberHandler implements ICommandHandler<ChangeCorporateNumberCommand> {
  constructor(
    @Inject(LEDGER) readonly store: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    readonly idempotencyKeys: IdempotencyKeys,
    readonly eventBus: EventBus,
  ) {}

  async execute(c: ChangeCorporateNumberCommand): Promise<Outcome<ChangedCorporateNumber>> {
    const body = { corporateNumber: c.corporateNumber, ...(c.name === undefined ? {} : { name: c.name }), ...(c.location === undefined ? {} : { location: c.location }), reason: c.reason, effectiveOn: c.effectiveOn };
    return decideAndAppend(
      this,
      c.corporateNumber,
      c.caller,
      body,
      (corporateNumber) => ({
        type: 'ChangeCorporateNumber',
        data: { corporateNumber, ...(c.name === undefined ? {} : { name: c.name }), ...(c.location === undefined ? {} : { location: c.location }), reason: c.reason, effectiveOn: c.effectiveOn, changedAt: this.clock().toISOString() },
      }),
      (serial, event, before) => changedOf(serial, event.data as CorporateNumberChangedData, currentOf(before)),
      (serial) => this.replay(serial),
    );
  }

  /** The first outcome, as it was then: the current name and location after that change. */
  private async replay(serial: SerialNumber): Promise<ChangedCorporateNumber> {
    const event = await eventOfSerial<CorporateNumberChangedData>(this.store, serial, 'CorporateNumberChanged');
    let state = corporateNumberFold.initialState();
    for (const e of await this.store.readStream(event.streamId)) {
      if (e.streamRevision >= event.streamRevision) break;
      if (corporateNumberFold.types.has(e.type)) state = corporateNumberFold.evolve(state, e as unknown as Evolvable<CorporateNumberEvent>);
    }
    return changedOf(serial, event.data, currentOf(state));
  }
}

@CommandHandler(CloseCorporateNumberCommand)
export class CloseCorporateNumberHandler implements ICommandHandler<CloseCorporateNumberCommand> {
  constructor(
    @Inject(LEDGER) readonly store: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    readonly idempotencyKeys: IdempotencyKeys,
    readonly eventBus: EventBus,
  ) {}

  async execute(c: CloseCorporateNumberCommand): Promise<Outcome<ClosedCorporateNumber>> {
    return decideAndAppend(
      this,
      c.corporateNumber,
      c.caller,
      { corporateNumber: c.corporateNumber, reason: c.reason, closedOn: c.closedOn },
      (corporateNumber) => ({ type: 'CloseCorporateNumber', data: { corporateNumber, reason: c.reason, closedOn: c.closedOn, closedAt: this.clock().toISOString() } }),
      (serial, event) => closedOf(serial, event.data as CorporateNumberClosedData),
      async (serial) => closedOf(serial, (await eventOfSerial<CorporateNumberClosedData>(this.store, serial, 'CorporateNumberClosed')).data),
    );
  }
}

function closedOf(serial: SerialNumber, d: CorporateNumberClosedData): ClosedCorporateNumber {
  return { serial, corporateNumber: d.corporateNumber, closedOn: d.closedOn, closedAt: d.closedAt };
}
