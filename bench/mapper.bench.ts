/**
 * Batched translations through the Redis code mapper versus bare node-redis pipelined GETs, measured in
 * the same run against the same server; then Redis memory per issued code over 1,000,000 codes
 * (INFO memory used_memory before and after, under a key prefix of this run, deleted afterwards).
 * Codes are minted as the hub mints them (sealed locators under a code key generated for the run, see
 * libs/mapper/src/code-locator.ts); `--random-codes` issues codes drawn at random instead, which the
 * mapper finds the long way (code bucket, then subject bucket).
 * Last line: one JSON object with the figures.
 *   npm run bench:mapper [-- --codes 1000000 --agencies 4 --batch 10000 --concurrency 2 --rounds 3 --url redis://127.0.0.1:6379]
 *                        [-- --subject-bits N --code-bits N --random-codes]
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { EventId, RecordedEvent, SerialNumber } from '#ledger';
import { agencyCodeFromRandomBytes, type AgencyCode } from '#linkage';
import { CodeLocator, RedisCodeMapper, bucketBitsFor, createMapperRedisClient, newCodeKey, type RedisCodeMapperOptions } from '#mapper';

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: 'redis://127.0.0.1:6379' },
    codes: { type: 'string', default: '1000000' },
    agencies: { type: 'string', default: '4' },
    batch: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '3' },
    translations: { type: 'string', default: '200000' },
    profile: { type: 'string' },
    'subject-bits': { type: 'string' },
    'code-bits': { type: 'string' },
    'random-codes': { type: 'boolean', default: false },
  },
});
const CODES = Number(values.codes);
const AGENCIES = Number(values.agencies);
const BATCH = Number(values.batch);
const CONCURRENCY = Number(values.concurrency);
const ROUNDS = Number(values.rounds);
const TRANSLATIONS = Number(values.translations);
const SUBJECTS = Math.floor(CODES / AGENCIES);
const AGENCY_IDS = ['jpn-pension-service', 'muroran-city', 'sapporo-city', 'hello-work-muroran', 'jasso', 'hokkaido-pref', 'kenpo-a', 'kenpo-b'].slice(0, AGENCIES);
const [FROM, TO] = [AGENCY_IDS[0]!, AGENCY_IDS[1]!];
// Short, as a deployment's prefix is (`lm` by default): key names are part of the memory per code.
const RUN = `lb${randomBytes(3).toString('hex')}`;
const RANDOM_CODES = values['random-codes']!;
const locator = new CodeLocator(newCodeKey());

/** Sized as the mapper sizes itself for this many codes and people (bucketBitsFor), unless given. */
function layoutFor(codes: number, subjects: number): RedisCodeMapperOptions {
  const sized = bucketBitsFor(codes, subjects);
  const bits = {
    codeBucketBits: values['code-bits'] === undefined ? sized.codeBucketBits : Number(values['code-bits']),
    subjectBucketBits: values['subject-bits'] === undefined ? sized.subjectBucketBits : Number(values['subject-bits']),
  };
  return { prefix: `${RUN}m`, ...bits, slotGroupBits: Math.min(8, bits.codeBucketBits, bits.subjectBucketBits) };
}

const client = createMapperRedisClient({ url: values.url! });
await client.connect();
const redisCpu = async (): Promise<number> => {
  const info = String(await client.sendCommand(['INFO', 'cpu']));
  return Number(/used_cpu_user:([\d.]+)/.exec(info)![1]) + Number(/used_cpu_sys:([\d.]+)/.exec(info)![1]);
};
const usedMemory = async (): Promise<number> => Number(/used_memory:(\d+)/.exec(String(await client.sendCommand(['INFO', 'memory'])))![1]);

function event(position: number, subjectId: string, agencyId: string, code: AgencyCode): RecordedEvent {
  return {
    eventId: `e${position}` as EventId,
    type: 'AgencyCodeIssued',
    schemaVersion: 1,
    streamId: `agency-code-${subjectId}-${agencyId}`,
    streamRevision: 0,
    position,
    serial: '20260401010000000001' as SerialNumber,
    terminal: 'completed',
    recordedAt: '2026-04-01T09:00:00.000Z',
    data: { subjectId, agencyId, agencyKind: 'municipality', code, acquisitionNumber: `A${position}`, issuedAt: '2026-04-01T09:00:00.000Z' },
    metadata: { actor: `agency:${agencyId}`, correlationId: `c${position}` },
  };
}

let mapper: RedisCodeMapper | undefined;
const getKeys: string[] = [];
try {
  // ---- 1. issue CODES codes through the projection's write path, measuring Redis memory ----
  const layout = layoutFor(CODES, SUBJECTS);
  const fromCodes: AgencyCode[] = [];
  const toCodes: AgencyCode[] = [];
  const before = await usedMemory();
  mapper = await RedisCodeMapper.open(client, { ...layout, locator, operationTimeoutMs: 60_000 });
  const applyStarted = process.hrtime.bigint();
  let position = 0;
  let pending: RecordedEvent[] = [];
  for (let s = 0; s < SUBJECTS; s++) {
    const subjectId = randomUUID();
    for (const agencyId of AGENCY_IDS) {
      const code = RANDOM_CODES ? agencyCodeFromRandomBytes(randomBytes(16)) : locator.mint(subjectId);
      if (agencyId === FROM && fromCodes.length < TRANSLATIONS) fromCodes.push(code);
      if (agencyId === TO && toCodes.length < TRANSLATIONS) toCodes.push(code);
      pending.push(event(position++, subjectId, agencyId, code));
    }
    if (pending.length >= 10_000) {
      await mapper.apply(pending);
      pending = [];
    }
  }
  await mapper.apply(pending);
  const applySeconds = Number(process.hrtime.bigint() - applyStarted) / 1e9;
  const after = await usedMemory();
  const issued = position;
  const bytesPerCode = (after - before) / issued;
  console.log(`issued ${issued.toLocaleString('en')} codes (${SUBJECTS.toLocaleString('en')} people × ${AGENCIES} agencies) through apply() in ${applySeconds.toFixed(1)} s (${Math.round(issued / applySeconds).toLocaleString('en')} events/s)`);
  console.log(`layout: ${JSON.stringify(layout)}; codes ${RANDOM_CODES ? 'drawn at random (two-round lookups)' : 'minted with sealed locators (one-round lookups)'}`);
  console.log(`Redis memory: ${(after - before).toLocaleString('en')} bytes → ${bytesPerCode.toFixed(2)} bytes per issued code`);

  // Check before timing: every sampled code translates to the right one.
  const check = await mapper.translateMany(FROM, fromCodes.slice(0, 1000), TO);
  check.forEach((t, i) => {
    if (t.status !== 'translated' || t.code !== toCodes[i]) throw new Error(`translation ${i} is wrong: ${JSON.stringify(t)}`);
  });

  // ---- 2. the same number of bare GETs of 16-byte values, same server, same client ----
  const value = randomBytes(16);
  for (let i = 0; i < fromCodes.length; i++) getKeys.push(`${RUN}g:${i}`);
  for (let i = 0; i < getKeys.length; i += 10_000) {
    const m = client.multi();
    for (const k of getKeys.slice(i, i + 10_000)) m.set(k, value);
    await m.execAsPipeline();
  }

  /** Items per second; also logs how busy this process and the Redis server were per item (µs). */
  async function timed(work: (slice: readonly string[]) => Promise<unknown>, items: readonly string[], label = ''): Promise<number> {
    let next = 0;
    const cpu0 = process.cpuUsage();
    const redis0 = await redisCpu();
    const started = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < items.length) {
          const slice = items.slice(next, (next += BATCH));
          await work(slice);
        }
      }),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    const redis = (await redisCpu()) - redis0;
    if (label) console.log(`  ${label}: ${(seconds * 1e6 / items.length).toFixed(2)} µs/item wall, node ${((cpu.user + cpu.system) / items.length).toFixed(2)} µs/item, redis ${(redis * 1e6 / items.length).toFixed(2)} µs/item`);
    return items.length / seconds;
  }
  const m = mapper;
  const translate = (slice: readonly string[]): Promise<unknown> => m.translateMany(FROM, slice, TO);
  // Bare GET baselines: the client's command method, and raw sendCommand; the faster one is the baseline.
  const getCommand = (slice: readonly string[]): Promise<unknown> => Promise.all(slice.map((k) => client.get(k)));
  const getRaw = (slice: readonly string[]): Promise<unknown> => Promise.all(slice.map((k) => client.sendCommand(['GET', k])));

  await timed(translate, fromCodes.slice(0, 20_000)); // warm-up
  await timed(getRaw, getKeys.slice(0, 20_000));
  // --profile FILE: a CPU profile of translation rounds only (open it in Chrome DevTools).
  if (values.profile) {
    const { Session } = await import('node:inspector/promises');
    const session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    await timed(translate, fromCodes, 'translate (profiled)');
    const { profile } = await session.post('Profiler.stop');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(values.profile, JSON.stringify(profile));
  }
  const rounds: { translations: number; gets: number }[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const translations = await timed(translate, fromCodes, 'translate');
    const gets = Math.max(await timed(getRaw, getKeys, 'GET (sendCommand)'), await timed(getCommand, getKeys, 'GET (client.get)'));
    rounds.push({ translations, gets });
    console.log(`round ${r + 1}: ${Math.round(translations).toLocaleString('en')} translations/s, ${Math.round(gets).toLocaleString('en')} GETs/s, ratio ${(translations / gets).toFixed(2)}`);
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const translationsPerSecond = median(rounds.map((r) => r.translations));
  const getsPerSecond = median(rounds.map((r) => r.gets));
  const ratio = median(rounds.map((r) => r.translations / r.gets));
  console.log(`median: ${Math.round(translationsPerSecond).toLocaleString('en')} translations/s (batches of ${BATCH}, ${CONCURRENCY} in flight) vs ${Math.round(getsPerSecond).toLocaleString('en')} pipelined GETs/s: ratio ${ratio.toFixed(2)}`);
  console.log(`bars: ratio ≥ 0.5 ${ratio >= 0.5 ? 'met' : 'MISSED'}; ≥ 250,000 translations/s ${translationsPerSecond >= 250_000 ? 'met' : 'MISSED'}; ≤ 64 bytes per code ${bytesPerCode <= 64 ? 'met' : 'MISSED'}`);
  console.log(
    JSON.stringify({
      bench: 'mapper',
      translationsPerSecond: Math.round(translationsPerSecond),
      pipelinedGetsPerSecond: Math.round(getsPerSecond),
      ratio: Number(ratio.toFixed(3)),
      bytesPerCode: Number(bytesPerCode.toFixed(2)),
      codes: issued,
      people: SUBJECTS,
      agenciesPerPerson: AGENCIES,
      batch: BATCH,
      concurrency: CONCURRENCY,
      applyEventsPerSecond: Math.round(issued / applySeconds),
      subjectBucketBits: layout.subjectBucketBits,
      codeKind: RANDOM_CODES ? 'random' : 'minted',
    }),
  );
} finally {
  await mapper?.drop();
  for (let i = 0; i < getKeys.length; i += 10_000) await client.sendCommand(['UNLINK', ...getKeys.slice(i, i + 10_000)]);
  await client.close();
}
