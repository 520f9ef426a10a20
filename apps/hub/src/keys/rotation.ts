import type { OnApplicationBootstrap } from '@nestjs/common';
import type { AppendResult, EventStore, ExpectedRevision } from '#ledger';
import type { HubConfig } from '../config/hub-config.js';
import { HubProblem } from '../http/hub-problem.js';
import type { Leadership } from '../leadership/leadership.js';
import type { Clock } from '../ledger/tokens.js';

/** Who asked for a rotation, as its event's metadata records it. */
export interface RotationMetadata {
  readonly actor: string;
  readonly correlationId: string;
}

/**
 * 503 NOT_LEADER on a standby (KurrentDB): only the leader rotates, and a standby refuses before it
 * generates or writes anything. `what` names what is rotated ("the code key", "credentials").
 */
export function refuseOnStandby(leadership: Leadership | null, what: string, nothing: 'recorded' | 'written'): void {
  if (leadership !== null && !leadership.acceptsCommands) {
    throw new HubProblem('NOT_LEADER', `this hub (${leadership.instanceId}) is a standby and does not rotate ${what}; nothing was ${nothing}: send the command to the leader`, { instanceId: leadership.instanceId });
  }
}

/**
 * Runs rotations one at a time, in the order they were asked for: each begins once the one before has
 * ended (done or failed), so that each names the key the one before made.
 */
export class OneAtATime {
  #last: Promise<unknown> = Promise.resolve();

  run<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#last.then(work, work);
    this.#last = run.catch(() => undefined);
    return run;
  }
}

/** Appends a rotation's public event on its stream, as the one completed event of a serial of its own. */
export function appendRotation(store: EventStore, stream: string, type: string, data: object, expectedRevision: ExpectedRevision, metadata: RotationMetadata): Promise<AppendResult> {
  return store.append({
    streamId: stream,
    expectedRevision,
    serial: { allocate: true },
    events: [{ type, data, terminal: 'completed' }],
    metadata,
  });
}

/**
 * A key the log announces the rotations of (code key, provision signing key, TLS CA): the hub takes what
 * the log's rotations give at start and when it takes over as leader (the previous leader may have
 * rotated), and rotates at the operator's command, on KurrentDB at the leader only, one at a time.
 */
export abstract class AnnouncedRotations implements OnApplicationBootstrap {
  readonly #oneAtATime = new OneAtATime();

  protected constructor(
    protected readonly config: HubConfig,
    protected readonly store: EventStore,
    protected readonly clock: Clock,
    protected readonly leadership: Leadership | null,
  ) {
    leadership?.onTakeover(() => this.load());
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.load();
  }

  /** Takes what the log's rotations give (at start, on takeover). */
  abstract load(): Promise<void>;

  /** A rotation command: refused on a standby at once (`what` is rotated), else run after the ones before. */
  protected command<T>(what: string, work: () => Promise<T>): Promise<T> {
    refuseOnStandby(this.leadership, what, 'recorded');
    return this.#oneAtATime.run(work);
  }
}
