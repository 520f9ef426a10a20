// Brings one intermediate server to a state where it can serve, idempotently: its answer key exists,
// its copies are loaded (when COPIES_FILE is given), it is registered at the hub with that key, and the
// token the hub issued is in AGENCY_TOKEN_FILE. Runs in the agency-node image as a one-shot job before
// the server starts (docker-compose.yml: register-<agency>).
//
// Environment: AGENCY_ID, AGENCY_DATA_DIR, AGENCY_TOKEN_FILE, AGENCY_HUB_URL (as the server's), and
// AGENCY_NAME, AGENCY_KIND, AGENCY_ENDPOINT (the URL the hub calls), optional AGENCY_MUNICIPALITY_CODE,
// COPIES_FILE, and OPERATOR_TOKEN_FILE (the hub's keys/operator.token.json).
/* global process, console, fetch, setTimeout */
/* eslint-disable no-restricted-syntax -- a one-shot job outside the apps: its environment is its configuration */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const env = (name, required = true) => {
  const value = process.env[name];
  if (required && (value === undefined || value === '')) throw new Error(`${name} is required`);
  return value;
};
// The image's working directory (/app), or the repository root after `npm run build`.
const main = join(process.cwd(), 'dist/apps/agency-node/src/main.js');
const agencyId = env('AGENCY_ID');
// Read before anything is done, so that a missing variable stops the job at once instead of being retried.
const registration = {
  agencyId,
  name: env('AGENCY_NAME'),
  kind: env('AGENCY_KIND'),
  endpoint: env('AGENCY_ENDPOINT'),
  ...(env('AGENCY_MUNICIPALITY_CODE', false) ? { municipalityCode: env('AGENCY_MUNICIPALITY_CODE') } : {}),
};
const hubUrl = env('AGENCY_HUB_URL').replace(/\/$/, '');
const tokenFile = env('AGENCY_TOKEN_FILE');
const offline = { PATH: process.env['PATH'] ?? '', AGENCY_ID: agencyId, AGENCY_DATA_DIR: env('AGENCY_DATA_DIR') };
const cli = (...args) => JSON.parse(execFileSync(process.execPath, [main, ...args], { env: offline, encoding: 'utf8' }));

const { answerPublicKey } = cli('keys');
const copies = env('COPIES_FILE', false);
if (copies) console.log(`register: loaded copies ${JSON.stringify(cli('load-copies', copies))}`);

const operator = JSON.parse(readFileSync(env('OPERATOR_TOKEN_FILE'), 'utf8')).token;
const call = async (method, path, body) => {
  const res = await fetch(`${hubUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${operator}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : {} };
};

// The hubs may still be starting, electing their leader or catching up: retry (5 minutes) until one takes it.
for (let attempt = 1; ; attempt++) {
  try {
    const known = await call('GET', `/v1/agencies/${encodeURIComponent(agencyId)}`);
    if (known.status === 200 && existsSync(tokenFile)) {
      console.log(`register: ${agencyId} is registered and holds its token`);
      break;
    }
    const res =
      known.status === 404
        ? await call('POST', '/v1/agencies', { ...registration, publicKey: answerPublicKey })
        : known.status === 200
          ? // Registered before, token lost (a new volume): a rotation issues a new one and retires the old.
            await call('POST', `/v1/agencies/${encodeURIComponent(agencyId)}/credential-rotations`)
          : known;
    if (res.status !== 201) throw new Error(`hub answered ${res.status}: ${JSON.stringify(res.json)}`);
    writeFileSync(tokenFile, `${res.json.token}\n`, { mode: 0o600 });
    console.log(`register: ${agencyId} ${known.status === 404 ? 'registered' : 'given a new token'} (serial ${res.json.serial})`);
    break;
  } catch (error) {
    if (attempt >= 150) throw error;
    console.log(`register: ${agencyId}: ${error instanceof Error ? error.message : String(error)}; retrying`);
    await new Promise((r) => setTimeout(r, 2000));
  }
}
