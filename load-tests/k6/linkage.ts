/**
 * The linkage load test for k6 (the bars in README, Benchmarks): POST /v1/queries at a constant arrival rate of 3,000/s,
 * failing when p99 > 50 ms or any request is not an answered query.
 *
 *   # a fixture from the Node runner (hub and agency node running, codes prepared):
 *   node --conditions=source --import tsx load-tests/runner/linkage.ts --write-fixture /tmp/linkage-fixture.json --hold 600
 *   k6 run -e FIXTURE=/tmp/linkage-fixture.json load-tests/k6/linkage.ts
 *   # or people prepared here through the API (agencies registered, Muroran's node serving with copies for LT-0000000 …):
 *   k6 run -e HUB_URL=http://127.0.0.1:8080 -e NODE_URL=http://127.0.0.1:8091 -e PENSION_TOKEN=… [-e ANSWER_PUBLIC_KEY=…] load-tests/k6/linkage.ts
 *
 * Other variables: RATE (3000), DURATION (30s), PRE_VUS (200), MAX_VUS (1000), PEOPLE (200, API mode).
 *
 * HUB_TLS=on (mutual TLS): the requester presents the client certificate the hub issued at its registration
 * (k6's tlsAuth: from the fixture's `tls`, or AGENCY_CERT_FILE and AGENCY_KEY_FILE in PEM) and trusts the
 * hub's CA. k6 has no script option for a CA of its own (its Go runtime reads SSL_CERT_FILE), so:
 *   node --conditions=source --import tsx load-tests/runner/linkage.ts --tls on --write-fixture /tmp/linkage-fixture.json --hold 600
 *   SSL_CERT_FILE=/tmp/linkage-fixture.json.ca.pem k6 run -e FIXTURE=/tmp/linkage-fixture.json load-tests/k6/linkage.ts
 * An https:// hub without a client certificate stops the run in setup() (the hub would refuse every query).
 */
import { check } from 'k6';
import http from 'k6/http';
import type { Certificate, Options } from 'k6/options';
import { prepareThroughApi, type LinkageFixture } from './setup.ts';

const RATE = Number(__ENV['RATE'] ?? '3000');

// open() works only in the init context: the fixture file is read once per VU here.
const FIXTURE: LinkageFixture | undefined = __ENV['FIXTURE'] ? (JSON.parse(open(__ENV['FIXTURE'])) as LinkageFixture) : undefined;

/** The requester's client certificate for mutual TLS: the fixture's, or PEM files named in the environment. */
function clientCertificate(): Certificate | undefined {
  if (FIXTURE?.tls !== undefined) return { cert: FIXTURE.tls.certificatePem, key: FIXTURE.tls.privateKeyPem };
  const certFile = __ENV['AGENCY_CERT_FILE'];
  const keyFile = __ENV['AGENCY_KEY_FILE'];
  if (certFile && keyFile) return { cert: open(certFile), key: open(keyFile) };
  return undefined;
}
const CLIENT_CERTIFICATE = clientCertificate();

export const options: Options = {
  scenarios: {
    linkage: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: __ENV['DURATION'] ?? '30s',
      preAllocatedVUs: Number(__ENV['PRE_VUS'] ?? '200'),
      maxVUs: Number(__ENV['MAX_VUS'] ?? '1000'),
    },
  },
  thresholds: {
    'http_req_duration{scenario:linkage}': ['p(99)<50'],
    'checks{scenario:linkage}': ['rate==1'],
    // An arrival-rate test that cannot start its iterations did not run at the rate.
    dropped_iterations: ['count==0'],
  },
  setupTimeout: '600s',
  // Mutual TLS: no `domains`, so the certificate is offered to every server that asks (the hub; Muroran's node does not ask).
  ...(CLIENT_CERTIFICATE === undefined ? {} : { tlsAuth: [CLIENT_CERTIFICATE] }),
};

export function setup(): LinkageFixture {
  const hub = FIXTURE?.hubUrl ?? __ENV['HUB_URL'] ?? '';
  if (hub.startsWith('https:') && CLIENT_CERTIFICATE === undefined) {
    throw new Error(`${hub} runs with mutual TLS: give the requester's client certificate (a fixture written with --tls on, or AGENCY_CERT_FILE and AGENCY_KEY_FILE), and trust the hub's CA with SSL_CERT_FILE`);
  }
  if (FIXTURE !== undefined) return FIXTURE;
  const hubUrl = __ENV['HUB_URL'];
  const nodeUrl = __ENV['NODE_URL'];
  const pensionToken = __ENV['PENSION_TOKEN'];
  const operatorToken = __ENV['OPERATOR_TOKEN'];
  if (!hubUrl || !nodeUrl || !pensionToken || !operatorToken) {
    throw new Error('set FIXTURE (a file written by the Node runner with --write-fixture), or HUB_URL, NODE_URL, PENSION_TOKEN and OPERATOR_TOKEN (agencies registered, the node serving)');
  }
  const prepared = prepareThroughApi({ hubUrl, nodeUrl, operatorToken, pensionToken, people: Number(__ENV['PEOPLE'] ?? '200') });
  // In this mode answers travel in plaintext unless the requester's X25519 public key is given.
  return __ENV['ANSWER_PUBLIC_KEY'] ? { ...prepared, answerPublicKey: __ENV['ANSWER_PUBLIC_KEY'] } : prepared;
}

export default function (fixture: LinkageFixture): void {
  const code = fixture.codes[Math.floor(Math.random() * fixture.codes.length)]!;
  const body = {
    providerAgencyId: fixture.providerAgencyId,
    procedureCode: fixture.procedureCode,
    itemCodes: fixture.itemCodes,
    code,
    ...(fixture.answerPublicKey === undefined ? {} : { answerPublicKey: fixture.answerPublicKey }),
  };
  const res = http.post(`${fixture.hubUrl}/v1/queries`, JSON.stringify(body), {
    headers: { 'content-type': 'application/json', authorization: `Bearer ${fixture.requesterToken}` },
  });
  check(res, {
    'status 200': (r) => r.status === 200,
    'outcome answered': (r) => typeof r.body === 'string' && r.body.includes('"outcome":"answered"'),
  });
}
