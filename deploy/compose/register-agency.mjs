// Brings one intermediate server to a state where it can serve, idempotently: its answer key exists,
// its copies are loaded (when COPIES_FILE is given), it is registered at the hub with that key, and the
// token the hub issued is in AGENCY_TOKEN_FILE. Runs in the agency-node image as a one-shot job before
// the server starts (docker-compose.yml: register-<agency>).
//
// Environment: AGENCY_ID, AGENCY_DATA_DIR, AGENCY_TOKEN_FILE, AGENCY_HUB_URL (as the server's), and
// AGENCY_NAME, AGENCY_KIND, AGENCY_ENDPOINT (the URL the hub calls), optional AGENCY_MUNICIPALITY_CODE,
// COPIES_FILE, and OPERATOR_TOKEN_FILE (the hub's keys/operator.token.json).
//
// TLS (docs/tls.md): with an https:// AGENCY_HUB_URL (a hub on HUB_TLS=on, the deployment's) the endpoint
// must be https:// too. The server makes its own TLS key (`tls-request`: AGENCY_DATA_DIR/keys/tls-key.pem,
// 0600, never sent) and the job registers it with that key's certificate signing request, so the hub never
// holds the key (the deployment's hubs require it: HUB_TLS_REQUIRE_CSR=on); the certificate the hub answers
// is kept in AGENCY_TLS_FILE (0600, the server's: its HTTPS certificate, presented to the hub as its client
// certificate, with the CA it trusts the hub by). The job trusts the hub's CA by NODE_EXTRA_CA_CERTS (the
// hub's keys/tls-ca.bundle.pem). A server registered before (without TLS, or whose file was lost) gets its
// endpoint moved to AGENCY_ENDPOINT and a certificate by a renewal with its CSR; the certificate names the
// endpoint's host, as the hub checks when it calls the server.
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
const tls = hubUrl.startsWith('https://');
const tlsFile = tls ? env('AGENCY_TLS_FILE') : undefined;
if (tls && !registration.endpoint.startsWith('https://')) throw new Error(`AGENCY_ENDPOINT must be https:// with a hub on TLS (${hubUrl}): the hub calls intermediate servers over TLS only`);
const offline = { PATH: process.env['PATH'] ?? '', AGENCY_ID: agencyId, AGENCY_DATA_DIR: env('AGENCY_DATA_DIR') };
const cli = (...args) => JSON.parse(execFileSync(process.execPath, [main, ...args], { env: offline, encoding: 'utf8' }));

const { answerPublicKey } = cli('keys');
// The server's own TLS key (made once, kept by the server) and a CSR of it: what the hub certifies.
const csr = tls ? cli('tls-request').csr : undefined;
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

/**
 * The registration's or a renewal's certificate, as the server's AGENCY_TLS_FILE holds it: of the server's
 * own key (no privateKeyPem: the server reads keys/tls-key.pem); a hub that made the key itself (no CSR taken)
 * answers it as privateKeyPem, kept too.
 */
function certificateOf(answer) {
  if (typeof answer?.certificatePem !== 'string' || typeof answer.caCertificatePem !== 'string') {
    throw new Error('the hub answered no certificate: is it on HUB_TLS=on?');
  }
  const { certificatePem, privateKeyPem, caCertificatePem, fingerprint, notBefore, notAfter } = answer;
  return { certificatePem, ...(typeof privateKeyPem === 'string' ? { privateKeyPem } : {}), caCertificatePem, fingerprint, notBefore, notAfter };
}

/**
 * A registered server without its certificate (registered before TLS, or its file lost): its endpoint is
 * set to AGENCY_ENDPOINT (the hub does not show the registered one; an https:// endpoint naming the host the
 * certificate is issued for), then a renewal issues it a certificate. Nothing is sent when it holds one.
 */
async function endpointAndCertificate() {
  if (tlsFile === undefined || existsSync(tlsFile)) return;
  const moved = await call('PATCH', `/v1/agencies/${encodeURIComponent(agencyId)}`, { endpoint: registration.endpoint });
  if (moved.status !== 200 && moved.json.code !== 'NOTHING_TO_UPDATE') throw new Error(`hub answered ${moved.status} to the endpoint's change: ${JSON.stringify(moved.json)}`);
  const renewed = await call('POST', `/v1/agencies/${encodeURIComponent(agencyId)}/certificates`, { csr });
  if (renewed.status !== 201) throw new Error(`hub answered ${renewed.status} to the certificate's renewal: ${JSON.stringify(renewed.json)}`);
  writeFileSync(tlsFile, `${JSON.stringify(certificateOf(renewed.json), null, 2)}\n`, { mode: 0o600 });
  console.log(`register: ${agencyId} at ${registration.endpoint} issued its certificate (fingerprint ${renewed.json.fingerprint})`);
}

// The hubs may still be starting, electing their leader or catching up: retry (5 minutes) until one takes it.
for (let attempt = 1; ; attempt++) {
  try {
    const known = await call('GET', `/v1/agencies/${encodeURIComponent(agencyId)}`);
    if (known.status === 200 && existsSync(tokenFile)) {
      await endpointAndCertificate();
      console.log(`register: ${agencyId} is registered and holds its token${tls ? ' and its certificate' : ''}`);
      break;
    }
    const res =
      known.status === 404
        ? await call('POST', '/v1/agencies', { ...registration, publicKey: answerPublicKey, ...(csr === undefined ? {} : { csr }) })
        : known.status === 200
          ? // Registered before, token lost (a new volume): a rotation issues a new one and retires the old.
            await call('POST', `/v1/agencies/${encodeURIComponent(agencyId)}/credential-rotations`)
          : known;
    if (res.status !== 201) throw new Error(`hub answered ${res.status}: ${JSON.stringify(res.json)}`);
    writeFileSync(tokenFile, `${res.json.token}\n`, { mode: 0o600 });
    if (tlsFile !== undefined && known.status === 404) writeFileSync(tlsFile, `${JSON.stringify(certificateOf(res.json.certificate), null, 2)}\n`, { mode: 0o600 });
    console.log(`register: ${agencyId} ${known.status === 404 ? 'registered' : 'given a new token'} (serial ${res.json.serial})`);
    if (known.status === 200) await endpointAndCertificate();
    break;
  } catch (error) {
    if (attempt >= 150) throw error;
    console.log(`register: ${agencyId}: ${error instanceof Error ? error.message : String(error)}; retrying`);
    await new Promise((r) => setTimeout(r, 2000));
  }
}
