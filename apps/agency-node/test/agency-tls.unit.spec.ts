import { describe, expect, test } from 'vitest';
import { AgencyConfigError, loadAgencyConfig } from '../src/config/agency-config.js';

const base = { AGENCY_ID: 'muroran-city', AGENCY_DATA_DIR: 'data/agency', AGENCY_HUB_URL: 'https://127.0.0.1:8080', AGENCY_TOKEN: 'tok-123' };
const PEM = (what: string) => `-----BEGIN ${what}-----\nAAAA\n-----END ${what}-----\n`;
const issued = { certificatePem: PEM('CERTIFICATE'), privateKeyPem: PEM('PRIVATE KEY'), caCertificatePem: PEM('CERTIFICATE'), fingerprint: 'f'.repeat(64) };

function load(env: Record<string, string>, files: Record<string, string>) {
  return loadAgencyConfig(env, {
    needsHub: true,
    cwd: '/srv',
    readFile: (p) => {
      const text = files[p];
      if (text === undefined) throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
      return text;
    },
  });
}

describe('AGENCY_TLS_FILE (mutual TLS with the hub)', () => {
  test('unset: plain HTTP, no certificate', () => {
    expect(load(base, {}).tls).toBeUndefined();
  });

  test('the registration\'s certificate, key and CA, read from the file (relative to the working directory)', () => {
    expect(load({ ...base, AGENCY_TLS_FILE: 'data/agency/hub-tls.json' }, { '/srv/data/agency/hub-tls.json': JSON.stringify(issued) }).tls).toEqual({
      certificatePem: issued.certificatePem,
      privateKeyPem: issued.privateKeyPem,
      caCertificatePem: issued.caCertificatePem,
    });
  });

  test('a missing file or one without the three PEMs is refused, naming the variable', () => {
    expect(() => load({ ...base, AGENCY_TLS_FILE: 'nope.json' }, {})).toThrow(AgencyConfigError);
    expect(() => load({ ...base, AGENCY_TLS_FILE: 'nope.json' }, {})).toThrow(/AGENCY_TLS_FILE: cannot read nope.json as JSON \(ENOENT\)/);
    expect(() => load({ ...base, AGENCY_TLS_FILE: 't.json' }, { '/srv/t.json': JSON.stringify({ certificatePem: issued.certificatePem }) })).toThrow(/AGENCY_TLS_FILE: t.json must hold certificatePem, privateKeyPem and caCertificatePem/);
  });
});
