import type { AppendResult, SerialNumber } from '#ledger';

/** Published on the in-process event bus after an append is durable. Holds positions, never data. */
export class EventsAppended {
  constructor(
    readonly streamId: string,
    readonly serial: SerialNumber,
    readonly firstPosition: number,
    readonly lastPosition: number,
    readonly types: readonly string[],
  ) {}

  static of(streamId: string, result: AppendResult, types: readonly string[]): EventsAppended {
    return new EventsAppended(streamId, result.serial, result.firstPosition, result.lastPosition, types);
  }
}
