import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { provisionKeyOf } from '../../apps/hub/src/linkage/hub-secrets.js';
import { REPO_ROOT, spawnBuilt, stop, waitReady, type Spawned } from './processes.js';

/** The bare two-hop relay baseline (load-tests/runner/baseline/): client → relay → provider and back, each its own process. */
export interface RelayBaseline {
  readonly relay: Spawned;
  readonly provider: Spawned;
  /** Where the load generator sends POST /v1/queries (the relay). */
  readonly url: string;
  readonly answerBytes: number;
  close(): Promise<void>;
}

const BASELINE_DIR = join(REPO_ROOT, 'load-tests', 'runner', 'baseline');

function spawnTs(name: string, file: string, env: Record<string, string>, nodeFlags: readonly string[]): Spawned {
  // Run from the repository so that `--import tsx` resolves; tsx only transpiles at load, the request path is plain JS.
  return spawnBuilt(name, join(BASELINE_DIR, file), [], env, REPO_ROOT, ['--conditions=source', '--import', 'tsx', ...nodeFlags]);
}

/**
 * Starts the provider (answers of `answerBytes` bytes), then the relay in front of it; both on free ports. With
 * `crypto`, the crypto relay: the same two processes doing a linkage's cryptography as well (the relay the hub's
 * share, the provider the intermediate server's; crypto-budget.ts), with a signing key made for this run.
 */
export async function startRelayBaseline(options: { answerBytes: number; log: (line: string) => void; nodeFlags?: readonly string[]; crypto?: { readonly people: number } }): Promise<RelayBaseline> {
  let provider: Spawned | undefined;
  let relay: Spawned | undefined;
  const close = async (): Promise<void> => {
    await stop(relay);
    await stop(provider);
  };
  const seed = options.crypto === undefined ? undefined : randomBytes(32);
  const kind = seed === undefined ? 'baseline' : 'crypto';
  try {
    const verify: Record<string, string> = seed === undefined ? {} : { BASELINE_VERIFY_KEY: provisionKeyOf(seed).publicKey };
    provider = spawnTs(`${kind} provider`, 'provider.ts', { BASELINE_PORT: '0', BASELINE_ANSWER_BYTES: String(options.answerBytes), ...verify }, options.nodeFlags ?? []);
    const providerUrl = await waitReady(provider, 30_000);
    const sign: Record<string, string> = seed === undefined ? {} : { BASELINE_SIGNING_SEED: seed.toString('base64url'), BASELINE_PEOPLE: String(options.crypto!.people) };
    relay = spawnTs(`${kind} relay`, 'relay.ts', { BASELINE_PORT: '0', BASELINE_PROVIDER_URL: providerUrl, ...sign }, options.nodeFlags ?? []);
    const url = await waitReady(relay, 30_000);
    options.log(`${seed === undefined ? 'relay baseline' : 'crypto relay (the relay baseline with a linkage\'s cryptography)'} ready: relay ${url} → provider ${providerUrl} (answers of ${options.answerBytes} bytes)`);
    return { relay, provider, url, answerBytes: options.answerBytes, close };
  } catch (error) {
    await close();
    throw error;
  }
}
