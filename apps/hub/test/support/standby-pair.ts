import { afterAll, beforeAll } from 'vitest';
import { SharedLog, startKurrentHub, type KurrentTestHub } from '../kurrentdb-hub.support.js';

/** A leader and a standby on one KurrentDB log (the wire-level stand-in, or the server at KURRENTDB_URL). */
export interface StandbyPair {
  readonly log: SharedLog;
  /** hub-a, started first: the leader. */
  readonly a: KurrentTestHub;
  /** hub-b: the standby. */
  readonly b: KurrentTestHub;
}

/**
 * Starts hub-a and then hub-b on one shared log, both with `env`, before the file's tests, and closes
 * both and the log after them. `a` and `b` are there once the tests run.
 */
export function useStandbyPair(env: Readonly<Record<string, string>>): StandbyPair {
  const log = new SharedLog();
  let a: KurrentTestHub | undefined;
  let b: KurrentTestHub | undefined;
  beforeAll(async () => {
    a = await startKurrentHub(log, { instanceId: 'hub-a', env });
    b = await startKurrentHub(log, { instanceId: 'hub-b', env });
  }, 60_000);
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await log.dispose();
  });
  return {
    log,
    get a() {
      return a!;
    },
    get b() {
      return b!;
    },
  };
}
