import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { X509Certificate as NodeX509Certificate, createHash, generateKeyPairSync, randomBytes, webcrypto } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, join } from 'node:path';

/** ECDSA P-256 with SHA-256 for every key and signature of the hub's CA: small, and fast in TLS handshakes. */
const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

/** The CA's key and certificate (secret: mode 0600, never committed). */
export const CA_KEY_FILE = 'tls-ca.key.json';
/** The CA's certificate alone (public): what a browser, curl or an intermediate server is told to trust. */
export const CA_CERT_FILE = 'tls-ca.cert.pem';
/** The hub's own server (and client) certificate and key, for its host names. */
export const HUB_CERT_FILE = 'tls-hub.key.json';

/** The SAN URI that names the agency a certificate was issued to: `urn:linkage-ledger:agency:<agencyId>`. */
export const AGENCY_URI_PREFIX = 'urn:linkage-ledger:agency:';
/** The SAN URI of the hub's own certificate. */
export const HUB_URI = 'urn:linkage-ledger:hub';

/** WebCrypto's key type (the project's lib has no DOM types). */
type CryptoKey = webcrypto.CryptoKey;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** A certificate with its private key, both PEM (the key PKCS#8). */
export interface KeyedCertificate {
  readonly certificatePem: string;
  readonly privateKeyPem: string;
}

/** What the log records of an issued certificate (all public: a certificate is shown to every peer). */
export interface IssuedCertificate extends KeyedCertificate {
  readonly serialNumber: string;
  /** Lowercase hex SHA-256 of the certificate's DER: how the hub recognises it in a handshake. */
  readonly fingerprint: string;
  readonly notBefore: string;
  readonly notAfter: string;
}

/** An agency's new certificate: with its key when the hub made the key, without when it certified the agency's CSR. */
export type AgencyIssuedCertificate = Omit<IssuedCertificate, 'privateKeyPem'> & { readonly privateKeyPem?: string };

/** Lowercase hex SHA-256 of a certificate's DER bytes. */
export function certificateFingerprint(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex');
}

/** The agency id a certificate's SAN URI names, or undefined (the hub's, or another CA's, certificate). */
export function agencyIdOfCertificate(der: Uint8Array): string | undefined {
  let names: string | undefined;
  try {
    names = new NodeX509Certificate(der).subjectAltName;
  } catch {
    return undefined;
  }
  for (const name of (names ?? '').split(', ')) {
    if (name.startsWith(`URI:${AGENCY_URI_PREFIX}`)) return name.slice(`URI:${AGENCY_URI_PREFIX}`.length);
  }
  return undefined;
}

/** SAN entries for host names and addresses: IP addresses as such, the rest as DNS names. */
function hostNames(names: readonly string[]): x509.JsonGeneralName[] {
  return [...new Set(names)].map((n) => (isIP(n) !== 0 ? { type: 'ip', value: n } : { type: 'dns', value: n }));
}

function newKeyPair(): { privateKeyPem: string; pkcs8: Buffer; spki: Buffer } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    pkcs8: privateKey.export({ format: 'der', type: 'pkcs8' }),
    spki: publicKey.export({ format: 'der', type: 'spki' }),
  };
}

async function signingKey(pkcs8: Buffer): Promise<CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', pkcs8, EC, false, ['sign']) as Promise<CryptoKey>;
}

async function publicKeyOf(spki: Buffer): Promise<CryptoKey> {
  return webcrypto.subtle.importKey('spki', spki, EC, true, ['verify']) as Promise<CryptoKey>;
}

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

/** A positive 128-bit serial (RFC 5280: at most 20 octets, positive), hex. */
function newSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString('hex');
}

/** Reads a JSON secret file, or writes what `create()` makes, exclusively (two processes at first start never overwrite each other's). */
async function loadOrCreateJson(path: string, create: () => Promise<Record<string, unknown>>, replace?: (existing: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  let text: string | undefined;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (text !== undefined) {
    const existing = JSON.parse(text) as Record<string, unknown>;
    if (replace === undefined || !replace(existing)) {
      if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
      return existing;
    }
    // Replaced (the hub's certificate for other host names, or near its end): written whole, then renamed over.
    const fresh = await create();
    const temp = `${path}.${process.pid}.tmp`;
    writeFileSync(temp, `${JSON.stringify(fresh, null, 2)}\n`, { mode: 0o600 });
    renameSync(temp, path);
    return fresh;
  }
  const fresh = await create();
  try {
    writeFileSync(path, `${JSON.stringify(fresh, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    return fresh;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  }
}

/** The trust bundle (public): every CA whose certificates the hub accepts now. Clients trust this file. */
export const CA_BUNDLE_FILE = 'tls-ca.bundle.pem';
/** A rotated CA: `tls-ca.<first 16 hex of its fingerprint>.key.json` (0600), beside the first CA's file. */
const ROTATED_CA_FILE = /^tls-ca\.([0-9a-f]{16})\.key\.json$/;

/** A CA's certificate and key (PEM), and for a rotated CA its certificate signed by the CA it replaced. */
export interface CaMaterial {
  readonly certificatePem: string;
  readonly keyPem: string;
  /** The same CA (subject, key) certified by the previous CA: served after the hub's certificate during the overlap, so a client trusting only the previous CA still connects. */
  readonly crossCertificatePem?: string;
}

/** What TlsCaKeyRotated records of one rotation (schemas/events/tls-ca-key-rotated.v1.json): public. */
export interface TlsCaRotationRecord {
  readonly caFingerprint: string;
  readonly previousCaFingerprint: string;
  /** Until when certificates of the previous CA are still accepted. */
  readonly overlapEndsAt: string;
}

function fingerprintOfPem(pem: string): string {
  return certificateFingerprint(new Uint8Array(new x509.X509Certificate(pem).rawData));
}

function writePublic(path: string, text: string): void {
  let shown: string | undefined;
  try {
    shown = readFileSync(path, 'utf8');
  } catch {
    shown = undefined;
  }
  if (shown === text) return;
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, text, { mode: 0o644 });
  renameSync(temp, path);
}

function caMaterialOf(path: string, file: Record<string, unknown>): CaMaterial {
  if (file['purpose'] !== 'tls-ca' || typeof file['key'] !== 'string' || typeof file['certificate'] !== 'string') {
    throw new Error(`${path} is not the hub's TLS CA (needs purpose "tls-ca", a PKCS#8 key and a certificate)`);
  }
  return { certificatePem: file['certificate'], keyPem: file['key'], ...(typeof file['crossCertificate'] === 'string' ? { crossCertificatePem: file['crossCertificate'] } : {}) };
}

/** The first CA (`keys/tls-ca.key.json`), made at first start. */
export async function loadOrCreateFirstCa(keysDir: string, now: Date): Promise<CaMaterial> {
  const path = join(keysDir, CA_KEY_FILE);
  const caFile = await loadOrCreateJson(path, async () => {
    const { privateKeyPem, pkcs8, spki } = newKeyPair();
    const publicKey = await publicKeyOf(spki);
    const certificate = await x509.X509CertificateGenerator.create({
      serialNumber: newSerial(),
      subject: 'CN=linkage-ledger hub CA, O=linkage-ledger',
      issuer: 'CN=linkage-ledger hub CA, O=linkage-ledger',
      notBefore: new Date(now.getTime() - 60_000),
      notAfter: new Date(now.getTime() + 3650 * DAY_MS),
      publicKey,
      signingKey: await signingKey(pkcs8),
      signingAlgorithm: SIGNING,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(publicKey),
      ],
    });
    return { purpose: 'tls-ca', alg: 'ECDSA P-256', key: privateKeyPem, certificate: certificate.toString('pem'), createdAt: now.toISOString() };
  });
  return caMaterialOf(path, caFile);
}

/**
 * A new CA (rotation): a new key, its self-signed certificate (10 years, the previous CA's subject) and the
 * same CA certified by `previous` (the cross certificate), stored as `tls-ca.<fingerprint16>.key.json`
 * (0600, created exclusively) BEFORE the log announces it.
 */
export async function createRotatedCa(keysDir: string, previous: CaMaterial, now: Date): Promise<CaMaterial & { readonly fingerprint: string; readonly subject: string; readonly serialNumber: string }> {
  for (;;) {
    const { privateKeyPem, pkcs8, spki } = newKeyPair();
    const publicKey = await publicKeyOf(spki);
    const serialNumber = newSerial();
    const previousCertificate = new x509.X509Certificate(previous.certificatePem);
    // The previous CA's subject: the cross certificate is then self-issued, which the previous CA's path
    // length of 0 allows (RFC 5280 6.1.4: self-issued certificates do not count); chains tell the two CAs
    // apart by key identifier.
    const subject = previousCertificate.subject;
    const extensions = [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
    ];
    const notBefore = new Date(now.getTime() - 60_000);
    const certificate = await x509.X509CertificateGenerator.create({ serialNumber, subject, issuer: subject, notBefore, notAfter: new Date(now.getTime() + 3650 * DAY_MS), publicKey, signingKey: await signingKey(pkcs8), signingAlgorithm: SIGNING, extensions });
    const cross = await x509.X509CertificateGenerator.create({
      serialNumber: newSerial(),
      subject,
      issuer: previousCertificate.subject,
      notBefore,
      notAfter: previousCertificate.notAfter,
      publicKey,
      signingKey: await signingKey(pemToDer(previous.keyPem)),
      signingAlgorithm: SIGNING,
      extensions: [...extensions, await x509.AuthorityKeyIdentifierExtension.create(previousCertificate, false)],
    });
    const fingerprint = certificateFingerprint(new Uint8Array(certificate.rawData));
    const path = join(keysDir, `tls-ca.${fingerprint.slice(0, 16)}.key.json`);
    const material = { certificatePem: certificate.toString('pem'), keyPem: privateKeyPem, crossCertificatePem: cross.toString('pem') };
    try {
      writeFileSync(path, `${JSON.stringify({ purpose: 'tls-ca', alg: 'ECDSA P-256', key: privateKeyPem, certificate: material.certificatePem, crossCertificate: material.crossCertificatePem, previousCaFingerprint: fingerprintOfPem(previous.certificatePem), createdAt: now.toISOString() }, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    } catch (e) {
      // 64 bits of fingerprint met again: draw again.
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw e;
    }
    return { ...material, fingerprint, subject, serialNumber };
  }
}

/** A rotated CA by its fingerprint, if this hub holds its file. */
export function loadRotatedCa(keysDir: string, fingerprint: string): CaMaterial | undefined {
  const name = `tls-ca.${fingerprint.slice(0, 16)}.key.json`;
  if (!ROTATED_CA_FILE.test(name)) return undefined;
  const path = join(keysDir, name);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const material = caMaterialOf(path, JSON.parse(text) as Record<string, unknown>);
  if (fingerprintOfPem(material.certificatePem) !== fingerprint) throw new Error(`${path} holds another CA than ${fingerprint}`);
  return material;
}

/**
 * The embedded default's small certificate authority (X-Road's model: one CA the hub runs, every
 * member's certificate bound to its registration). Generated at first start into the hub's keys dir:
 * its key never leaves `keys/tls-ca.key.json` (0600); its certificate is `keys/tls-ca.cert.pem`. It issues
 * the hub's server certificate for its host names and each agency's certificate (client and server: the
 * same certificate admits the agency's calls to the hub and proves its intermediate server to the hub).
 * After a rotation (TlsCaKeyRotated) the newest CA issues, and the CAs it replaced stay trusted until
 * their overlap ends (`trustBundlePem`, `keys/tls-ca.bundle.pem`).
 */
export class HubCertificateAuthority {
  readonly #caCertificate: x509.X509Certificate;
  readonly #caKey: CryptoKey;

  private constructor(
    /** The CA that issues now. */
    readonly caCertificatePem: string,
    /** Every CA whose certificates are accepted now (the current one first). */
    readonly trustBundlePem: string,
    caCertificate: x509.X509Certificate,
    caKey: CryptoKey,
    /** The hub's own certificate (with the cross certificate after it during an overlap) and key (server auth for HTTPS and gRPC, client auth towards intermediate servers). */
    readonly hub: KeyedCertificate,
    /** When the trust bundle next changes (the earliest overlap end still to come), if ever. */
    readonly nextChangeAt: Date | undefined,
    /** The current CA's certificate and key (what a rotation certifies the next CA with). */
    readonly material: CaMaterial,
  ) {
    this.#caCertificate = caCertificate;
    this.#caKey = caKey;
  }

  /** Lowercase hex SHA-256 of the current CA certificate's DER. */
  get caFingerprint(): string {
    return certificateFingerprint(new Uint8Array(this.#caCertificate.rawData));
  }

  /**
   * Loads the CA from `keysDir`, creating it at first start, and the hub's certificate for `names` (made
   * again when the names changed or it ends within 30 days).
   */
  static async loadOrCreate(keysDir: string, names: readonly string[], now: Date = new Date()): Promise<HubCertificateAuthority> {
    return HubCertificateAuthority.withRotations(keysDir, names, [], now);
  }

  /**
   * The CA after the rotations the log announces (oldest first): the newest one whose file this hub
   * holds issues; each CA a rotation replaced is trusted until that rotation's overlap ends. Writes
   * `tls-ca.cert.pem` (the current CA) and `tls-ca.bundle.pem` (every CA trusted now), and re-issues the
   * hub's certificate when its CA changed.
   */
  static async withRotations(keysDir: string, names: readonly string[], rotations: readonly TlsCaRotationRecord[], now: Date = new Date()): Promise<HubCertificateAuthority> {
    const chain: CaMaterial[] = [await loadOrCreateFirstCa(keysDir, now)];
    for (const rotation of rotations) {
      const next = loadRotatedCa(keysDir, rotation.caFingerprint);
      if (next === undefined) break;
      chain.push(next);
    }
    const current = chain.at(-1)!;
    const trusted = [current.certificatePem];
    let nextChangeAt: Date | undefined;
    let crossServed = false;
    for (const [k, rotation] of rotations.slice(0, chain.length - 1).entries()) {
      const ends = Date.parse(rotation.overlapEndsAt);
      if (ends <= now.getTime()) continue;
      trusted.push(chain[k]!.certificatePem);
      if (nextChangeAt === undefined || ends < nextChangeAt.getTime()) nextChangeAt = new Date(ends);
      if (k === chain.length - 2) crossServed = true;
    }
    const caCertificatePem = current.certificatePem;
    const trustBundlePem = trusted.map((p) => (p.endsWith('\n') ? p : `${p}\n`)).join('');
    writePublic(join(keysDir, CA_CERT_FILE), caCertificatePem);
    writePublic(join(keysDir, CA_BUNDLE_FILE), trustBundlePem);
    const caKey = await signingKey(pemToDer(current.keyPem));
    const caCertificate = new x509.X509Certificate(caCertificatePem);
    const caFingerprint = certificateFingerprint(new Uint8Array(caCertificate.rawData));
    const wanted = [...new Set(names)].sort().join(',');
    const hubFile = await loadOrCreateJson(
      join(keysDir, HUB_CERT_FILE),
      async () => {
        const issued = await issue(caCertificate, caKey, { subject: 'CN=linkage-ledger hub', uris: [HUB_URI], names, now, days: 825 });
        return { purpose: 'tls-hub', names: wanted, key: issued.privateKeyPem, certificate: issued.certificatePem, notAfter: issued.notAfter, caFingerprint };
      },
      (existing) => existing['names'] !== wanted || existing['caFingerprint'] !== caFingerprint || typeof existing['notAfter'] !== 'string' || Date.parse(existing['notAfter']) - now.getTime() < 30 * DAY_MS,
    );
    const leaf = hubFile['certificate'] as string;
    const served = crossServed && current.crossCertificatePem !== undefined ? `${leaf.endsWith('\n') ? leaf : `${leaf}\n`}${current.crossCertificatePem}` : leaf;
    return new HubCertificateAuthority(caCertificatePem, trustBundlePem, caCertificate, caKey, { certificatePem: served, privateKeyPem: hubFile['key'] as string }, nextChangeAt, current);
  }

  /**
   * A new certificate for an agency: SAN URI `urn:linkage-ledger:agency:<id>` and the host of its
   * endpoint. With `spki` (the ECDSA P-256 key of the agency's checked certificate signing request,
   * csr.ts) it certifies that key and answers no private key; without, it makes a key here and returns it
   * once (the demo path). The hub keeps only the certificate's fingerprint either way.
   */
  async issueAgencyCertificate(agencyId: string, endpointHosts: readonly string[], now: Date, days: number): Promise<IssuedCertificate>;
  async issueAgencyCertificate(agencyId: string, endpointHosts: readonly string[], now: Date, days: number, spki: Uint8Array | undefined): Promise<AgencyIssuedCertificate>;
  async issueAgencyCertificate(agencyId: string, endpointHosts: readonly string[], now: Date, days: number, spki?: Uint8Array): Promise<AgencyIssuedCertificate> {
    const options = { subject: `CN=${agencyId.replace(/[,+"\\<>;=]/g, '_')}, O=linkage-ledger agency`, uris: [`${AGENCY_URI_PREFIX}${agencyId}`], names: endpointHosts, now, days };
    if (spki === undefined) return issue(this.#caCertificate, this.#caKey, options);
    return certify(this.#caCertificate, this.#caKey, options, await publicKeyOf(Buffer.from(spki)));
  }

  /** True when `der` is signed by this CA (the chain a TLS handshake checked; for tests and tools). */
  async issued(der: Uint8Array): Promise<boolean> {
    try {
      return await new x509.X509Certificate(der).verify({ publicKey: await this.#caCertificate.publicKey.export(), signatureOnly: true });
    } catch {
      return false;
    }
  }
}

interface IssueOptions {
  readonly subject: string;
  readonly uris: readonly string[];
  readonly names: readonly string[];
  readonly now: Date;
  readonly days: number;
  /** Test only: a validity that has already ended. */
  readonly notBefore?: Date;
  readonly notAfter?: Date;
}

/** A new key pair and its certificate: the key returned with it. */
async function issue(ca: x509.X509Certificate, caKey: CryptoKey, options: IssueOptions): Promise<IssuedCertificate> {
  const { privateKeyPem, spki } = newKeyPair();
  return { ...(await certify(ca, caKey, options, await publicKeyOf(spki))), privateKeyPem };
}

/** A certificate of `publicKey` (ECDSA P-256), signed by the CA. */
async function certify(ca: x509.X509Certificate, caKey: CryptoKey, options: IssueOptions, publicKey: CryptoKey): Promise<Omit<IssuedCertificate, 'privateKeyPem'>> {
  const serialNumber = newSerial();
  // A minute of slack for clocks a little behind the hub's.
  const notBefore = options.notBefore ?? new Date(options.now.getTime() - 60_000);
  const notAfter = options.notAfter ?? new Date(options.now.getTime() + options.days * DAY_MS);
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber,
    subject: options.subject,
    issuer: ca.subject,
    notBefore,
    notAfter,
    publicKey,
    signingKey: caKey,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
      new x509.SubjectAlternativeNameExtension([...options.uris.map((u) => ({ type: 'url' as const, value: u })), ...hostNames(options.names)], false),
      await x509.AuthorityKeyIdentifierExtension.create(ca, false),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
    ],
  });
  return {
    certificatePem: certificate.toString('pem'),
    serialNumber,
    fingerprint: certificateFingerprint(new Uint8Array(certificate.rawData)),
    notBefore: certificate.notBefore.toISOString(),
    notAfter: certificate.notAfter.toISOString(),
  };
}

/** Test support: a certificate of this CA with any validity (an expired one), made with the CA's files in `keysDir`. */
export async function issueForTest(keysDir: string, agencyId: string, notBefore: Date, notAfter: Date): Promise<IssuedCertificate> {
  const caFile = JSON.parse(readFileSync(join(keysDir, CA_KEY_FILE), 'utf8')) as { key: string; certificate: string };
  return issue(new x509.X509Certificate(caFile.certificate), await signingKey(pemToDer(caFile.key)), {
    subject: `CN=${agencyId}`,
    uris: [`${AGENCY_URI_PREFIX}${agencyId}`],
    names: ['localhost'],
    now: notBefore,
    days: 1,
    notBefore,
    notAfter,
  });
}

/** Test support: a self-contained CA elsewhere (not the hub's) and one certificate it issued for `agencyId`. */
export async function foreignCertificate(agencyId: string, now: Date = new Date()): Promise<IssuedCertificate & { readonly caCertificatePem: string }> {
  const { pkcs8, spki } = newKeyPair();
  const publicKey = await publicKeyOf(spki);
  const key = await signingKey(pkcs8);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({ serialNumber: newSerial(), name: 'CN=another CA', notBefore: new Date(now.getTime() - 60_000), notAfter: new Date(now.getTime() + DAY_MS), keys: { publicKey, privateKey: key }, signingAlgorithm: SIGNING, extensions: [new x509.BasicConstraintsExtension(true, 0, true)] });
  const issued = await issue(ca, key, { subject: `CN=${agencyId}`, uris: [`${AGENCY_URI_PREFIX}${agencyId}`], names: ['localhost'], now, days: 1 });
  return { ...issued, caCertificatePem: ca.toString('pem') };
}
