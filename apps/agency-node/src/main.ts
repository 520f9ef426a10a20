import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { Logger } from '@nestjs/common';
import { Command, InvalidArgumentError } from 'commander';
import { AgencyConfigError, databasePath, keysDir, loadAgencyConfig, type AgencyConfig } from './config/agency-config.js';
import { createAgencyAppWithLogs, openAgencyRuntime } from './agency-app.js';
import { startProvisionGrpcServer } from './provider/provision-grpc.js';
import { HubClient } from './hub/hub-client.js';
import { tlsFetch } from './hub/tls-fetch.js';
import { AgencyProblem } from './http/agency-problem.js';
import { loadOrCreateAnswerKeys } from './keys/answer-keys.js';
import { certificateRequest, loadOrCreateTlsKey } from './keys/tls-key.js';
import { CopyUpdatesService, type UpdateInput } from './mesh/copy-updates.service.js';
import { SubscriptionsService } from './mesh/subscriptions.service.js';
import { RequesterService } from './requester/requester.service.js';
import { AgencyStore, type CopyRecord, type Role } from './store/agency-store.js';

/** EX_CONFIG (sysexits.h): the configuration is wrong, so restarting will not help. */
const EXIT_CONFIG = 78;

function config(needsHub: boolean): AgencyConfig {
  try {
    // The one place the environment is read; everything else gets the validated AgencyConfig.
    // eslint-disable-next-line no-restricted-syntax -- boot-time read, validated into AgencyConfig
    return loadAgencyConfig(process.env, { needsHub });
  } catch (error) {
    if (error instanceof AgencyConfigError) {
      process.stderr.write(`agency-node: ${error.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw error;
  }
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

async function serve(): Promise<void> {
  const runtime = await openAgencyRuntime(config(true));
  const { app } = await createAgencyAppWithLogs(runtime);
  // SIGTERM/SIGINT: stop taking requests, then close the store and write out the logs (AgencyModule) and exit.
  app.enableShutdownHooks(['SIGTERM', 'SIGINT']);
  await app.listen({ host: runtime.config.host, port: runtime.config.port });
  new Logger('AgencyNode').log(`listening on ${await app.getUrl()} (agency ${runtime.config.agencyId}, hub ${runtime.hub.url}, data ${runtime.config.dataDir})`);
  if (runtime.config.grpcPort !== undefined) {
    // The provision endpoint over gRPC as well, for a hub that has this node registered as grpc://host:port.
    const grpc = await startProvisionGrpcServer(runtime.provisions, { host: runtime.config.host, port: runtime.config.grpcPort, maxMessageBytes: runtime.config.bodyLimitBytes });
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => void grpc.close());
    new Logger('AgencyNode').log(`provision endpoint over gRPC on grpc://${runtime.config.host}:${grpc.port}`);
  }
}

/** Opens what a one-shot staff command needs: the store, and for hub commands the keys and the hub client. */
async function withRequester<T>(fn: (requester: RequesterService, store: AgencyStore) => Promise<T>): Promise<T> {
  const cfg = config(true);
  const keys = await loadOrCreateAnswerKeys(keysDir(cfg));
  const store = new AgencyStore(databasePath(cfg));
  try {
    return await fn(new RequesterService(store, new HubClient(cfg.hub!, cfg.tls === undefined ? fetch : tlsFetch(cfg.tls)), keys), store);
  } finally {
    await store.close();
  }
}

/** Opens the store and a hub client for a one-shot mesh command (updates, subscriptions). */
async function withHub<T>(fn: (hub: HubClient, store: AgencyStore) => Promise<T>): Promise<T> {
  const cfg = config(true);
  const store = new AgencyStore(databasePath(cfg));
  try {
    return await fn(new HubClient(cfg.hub!, cfg.tls === undefined ? fetch : tlsFetch(cfg.tls)), store);
  } finally {
    await store.close();
  }
}

function readStdin(): string {
  return readFileSync(0, 'utf8').trim();
}

function positiveInt(value: string): number {
  if (!/^\d{1,9}$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('must be a positive integer');
  return Number(value);
}

const program = new Command('agency-node')
  .description("An agency's intermediate server (中間サーバー): holds its copies (副本), answers the hub's provision requests, and sends its staff's queries.")
  .showHelpAfterError();

program.command('serve').description('run the HTTP server (provision endpoints for the hub, staff endpoints)').action(serve);

program
  .command('keys')
  .description('print the answer public key to register with the hub (generates the key pair at first use)')
  .action(async () => {
    const cfg = config(false);
    const keys = await loadOrCreateAnswerKeys(keysDir(cfg));
    print({ agencyId: cfg.agencyId, answerPublicKey: keys.publicKey });
  });

program
  .command('tls-request')
  .description('print a certificate signing request (PKCS#10) for the node\'s own TLS key, keys/tls-key.pem (ECDSA P-256, made at first use, never sent): the csr to register or renew with, so the hub never holds the key')
  .action(async () => {
    const cfg = config(false);
    const key = loadOrCreateTlsKey(keysDir(cfg));
    print({ agencyId: cfg.agencyId, keyFile: key.path, keyCreated: key.created, csr: await certificateRequest(cfg.agencyId, key.privateKeyPem) });
  });

program
  .command('load-copies')
  .description('load copies (副本) from a JSON file: [{localId, restricted?, items: {itemCode: value}}]')
  .argument('<file>', 'the JSON file')
  .action(async (file: string) => {
    const cfg = config(false);
    let records: CopyRecord[];
    try {
      records = JSON.parse(readFileSync(file, 'utf8')) as CopyRecord[];
    } catch (error) {
      throw new AgencyProblem('VALIDATION_FAILED', `cannot read ${file} as JSON (${error instanceof Error ? error.message : String(error)})`);
    }
    if (!Array.isArray(records)) throw new AgencyProblem('VALIDATION_FAILED', `${file} must hold a JSON array of {localId, restricted?, items}`);
    const store = new AgencyStore(databasePath(cfg));
    try {
      print(store.loadCopies(records, new Date()));
    } finally {
      await store.close();
    }
  });

program
  .command('acquire')
  .description("acquire this agency's code for a person from the hub (the individual number is sent once and never stored)")
  .requiredOption('--local-id <id>', "the agency's own id for the person")
  .requiredOption('--individual-number <digits>', 'the 12-digit individual number, or "-" to read it from stdin (keeps it out of the process list)')
  .requiredOption('--acquisition-number <text>', 'the acquisition number of this procedure')
  .action((o: { localId: string; individualNumber: string; acquisitionNumber: string }) =>
    withRequester(async (requester) => {
      const individualNumber = o.individualNumber === '-' ? readStdin() : o.individualNumber;
      print(await requester.acquire({ localId: o.localId, individualNumber, acquisitionNumber: o.acquisitionNumber }));
    }),
  );

program
  .command('query')
  .description('query another agency through the hub and print the opened answer')
  .requiredOption('--local-id <id>', "the agency's own id for the person")
  .requiredOption('--provider <agencyId>', 'the provider agency id, e.g. muroran-city')
  .requiredOption('--procedure <code>', 'the procedure code, e.g. pension-award-claim')
  .requiredOption('--items <codes>', 'comma-separated item codes, e.g. local-tax,resident-record')
  .option('--no-encrypt', 'let the answer travel unencrypted (not recommended)')
  .action((o: { localId: string; provider: string; procedure: string; items: string; encrypt: boolean }) =>
    withRequester(async (requester) => {
      const itemCodes = o.items.split(',').map((s) => s.trim()).filter((s) => s !== '');
      print(await requester.query({ localId: o.localId, providerAgencyId: o.provider, procedureCode: o.procedure, itemCodes, encrypt: o.encrypt }));
    }),
  );

program
  .command('records')
  .description("print this agency's own provision record, newest first")
  .option('--limit <n>', 'how many lines', positiveInt, 50)
  .option('--before <id>', 'only lines older than this id (paging)', positiveInt)
  .option('--role <role>', 'provided or requested')
  .action(async (o: { limit: number; before?: number; role?: string }) => {
    if (o.role !== undefined && o.role !== 'provided' && o.role !== 'requested') throw new AgencyProblem('VALIDATION_FAILED', '--role must be provided or requested');
    const cfg = config(false);
    const store = new AgencyStore(databasePath(cfg));
    try {
      print({ records: store.records({ limit: o.limit, before: o.before, role: o.role as Role | undefined }) });
    } finally {
      await store.close();
    }
  });

program
  .command('update-copies')
  .description('load changed copies (副本更新) and report them to the hub, which pushes to the subscribers: [{localId, items: {itemCode: new value}}] or {updateId?, updatedAt?, changes}')
  .argument('<file>', 'the JSON file')
  .option('--update-id <id>', 'this update\'s id: running the command again with the same id and file loads nothing twice and sends only the reports still pending')
  .option('--updated-at <time>', 'when the copies changed (RFC 3339); default now')
  .action((file: string, o: { updateId?: string; updatedAt?: string }) =>
    withHub(async (hub, store) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(readFileSync(file, 'utf8'));
      } catch (error) {
        throw new AgencyProblem('VALIDATION_FAILED', `cannot read ${file} as JSON (${error instanceof Error ? error.message : String(error)})`);
      }
      const fromFile = (Array.isArray(parsed) ? { changes: parsed } : parsed) as Partial<UpdateInput>;
      const input = { ...fromFile, ...(o.updateId === undefined ? {} : { updateId: o.updateId }), ...(o.updatedAt === undefined ? {} : { updatedAt: o.updatedAt }) } as UpdateInput;
      print(await new CopyUpdatesService(store, hub, () => new Date()).update(input));
    }),
  );

program
  .command('report-updates')
  .description('send the update reports the hub has not taken yet again, with their idempotency keys')
  .action(() => withHub(async (hub, store) => print(await new CopyUpdatesService(store, hub, () => new Date()).reportPending())));

program
  .command('subscribe')
  .description("subscribe to a provider's items for one of the agency's people (the hub checks the authorization table's push column)")
  .requiredOption('--local-id <id>', "the agency's own id for the person")
  .requiredOption('--provider <agencyId>', 'the provider agency id, e.g. muroran-city')
  .requiredOption('--procedure <code>', 'the procedure code, e.g. pension-award-claim')
  .requiredOption('--items <codes>', 'comma-separated item codes, e.g. local-tax')
  .option('--expires-at <time>', 'RFC 3339; default: the hub\'s (one year)')
  .action((o: { localId: string; provider: string; procedure: string; items: string; expiresAt?: string }) =>
    withHub(async (hub, store) => {
      const itemCodes = o.items.split(',').map((s) => s.trim()).filter((s) => s !== '');
      print(await new SubscriptionsService(store, hub).subscribe({ localId: o.localId, providerAgencyId: o.provider, procedureCode: o.procedure, itemCodes, ...(o.expiresAt === undefined ? {} : { expiresAt: o.expiresAt }) }));
    }),
  );

program
  .command('subscriptions')
  .description("list this agency's subscriptions as the hub keeps them, with the local id of each person")
  .option('--limit <n>', 'how many', positiveInt)
  .option('--after <cursor>', 'the "next" of the previous page')
  .action((o: { limit?: number; after?: string }) => withHub(async (hub, store) => print(await new SubscriptionsService(store, hub).list(o))));

program
  .command('unsubscribe')
  .description('cancel a subscription')
  .argument('<subscriptionId>', 'the id the hub gave it')
  .action((id: string) => withHub(async (hub, store) => print(await new SubscriptionsService(store, hub).cancel(id))));

program
  .command('pushes')
  .description('print the pushes received from the hub, newest first, with what the fetch after each obtained')
  .option('--limit <n>', 'how many', positiveInt, 50)
  .option('--before <id>', 'only pushes older than this id (paging)', positiveInt)
  .action(async (o: { limit: number; before?: number }) => {
    const cfg = config(false);
    const store = new AgencyStore(databasePath(cfg));
    try {
      print({ pushes: store.mesh.pushes({ limit: o.limit, before: o.before }) });
    } finally {
      await store.close();
    }
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof AgencyProblem) {
    process.stderr.write(`${JSON.stringify({ code: error.code, status: error.status, detail: error.message, ...error.extensions }, null, 2)}\n`);
    process.exit(1);
  }
  process.stderr.write(`agency-node: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
