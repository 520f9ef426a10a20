// The deployment files, validated offline: no image is pulled or built and no cluster is needed.
// - every app's Dockerfile: multi-stage, non-root, no dev dependencies, COPY sources present;
// - deploy/compose: Debian's `docker-compose config` (docker-compose 1.29, apt package docker-compose)
//   accepts each compose file, and the services are what deploy/README.md says;
// - deploy/k8s: every document validates against its Kubernetes schema (kubernetes-models), and the
//   policy checks a reviewer wants (probes, non-root, limits, selectors, Secrets, NetworkPolicies);
// - the hub variables compose and Kubernetes set are the same and are all ones hub-config.ts reads;
// - TLS (docs/tls.md): no hub runs with HUB_TLS=off, one CA reaches every client through its public
//   certificates, every probe and health check of a hub or an intermediate server asks over HTTPS, every
//   agency is registered with an https:// endpoint, the router passes TLS through.
// Each check is also shown failing on a broken input.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  ROOT,
  acceptedVariables,
  dockerfileProblems,
  dockerignorePatterns,
  fieldProblems,
  hubVariables,
  loadManifests,
  networkProblems,
  policyProblems,
  routerProblems,
  schemaProblem,
  type Manifest,
  type Obj,
} from './deploy-checks.js';

const APPS = {
  hub: { serves: { port: 8080, healthPath: '/health/live' } },
  'agency-node': { serves: { port: 8090, healthPath: '/health/live' } },
  portal: { serves: { port: 3300, healthPath: '/' } },
  auditor: {},
} as const;

const COMPOSE_DIR = join(ROOT, 'deploy/compose');
const K8S_DIR = join(ROOT, 'deploy/k8s');

describe('Dockerfiles', () => {
  const ignore = dockerignorePatterns(readFileSync(join(ROOT, '.dockerignore'), 'utf8'));

  it('.dockerignore keeps what is built, generated or secret out of the build context', () => {
    for (const path of ['node_modules', 'apps/hub/node_modules', 'dist', 'data', '.build', 'test-results', '.git', 'deploy/compose/secrets', 'deploy/compose/.env', 'data/keys/operator.token']) {
      expect(ignore.some((re) => re.test(path)), path).toBe(true);
    }
    for (const path of ['package.json', 'package-lock.json', 'apps/hub/src', 'libs', 'schemas', 'deploy/compose/hub-keygen.mjs']) {
      expect(ignore.some((re) => re.test(path)), path).toBe(false);
    }
  });

  for (const [app, expectations] of Object.entries(APPS)) {
    it(`apps/${app}/Dockerfile: multi-stage, non-root, no dev dependencies, sources present${'serves' in expectations ? ', exposed and health-checked' : ''}`, () => {
      const text = readFileSync(join(ROOT, 'apps', app, 'Dockerfile'), 'utf8');
      expect(dockerfileProblems(text, ignore, expectations)).toEqual([]);
    });
  }

  it('finds each problem of a broken Dockerfile', () => {
    const broken = [
      'FROM node:20-bookworm',
      'WORKDIR /app',
      'COPY package.json no-such-file.txt ./',
      'COPY .git ./git',
      'COPY --from=builder /x /y',
      'RUN npm install && npm ci',
      'USER root',
      'CMD ["node", "main.js"]',
    ].join('\n');
    expect(dockerfileProblems(broken, ignore, {})).toEqual(['1 FROM stage(s): a multi-stage build has at least 2']);
    const twoStages = `FROM node:20-bookworm AS build\nRUN echo no build\nFROM node:20-bookworm\n${broken.split('\n').slice(1).join('\n')}`;
    expect(dockerfileProblems(twoStages, ignore, APPS.hub)).toEqual([
      'final stage FROM node:20-bookworm: expected node:20/22-<debian>-slim',
      'final stage runs as USER root',
      'final stage line 8: npm install without --omit=dev installs dev dependencies',
      'final stage line 8: npm ci without --omit=dev installs dev dependencies',
      'no earlier stage runs npm run build',
      'line 5: COPY no-such-file.txt: no such path in the repository',
      'line 6: COPY .git: .dockerignore leaves it out of the build context',
      'line 7: COPY --from=builder: no earlier stage of that name',
      'final stage does not EXPOSE 8080',
      'final stage has no HEALTHCHECK',
    ]);
    expect(dockerfileProblems('FROM node:20-bookworm AS build\nRUN npm run build\nFROM node:20-bookworm-slim\nCMD ["x"]\n', ignore, {})).toEqual([
      'final stage has no USER: it would run as root',
    ]);
  });
});

/** Debian's docker-compose (1.29, Python): `config` validates a compose file without a Docker daemon. */
function dockerCompose(): string {
  for (const dir of ['/usr/bin', '/usr/local/bin', ...(process.env['PATH'] ?? '').split(':')]) {
    const path = join(dir, 'docker-compose');
    if (dir !== '' && existsSync(path)) return path;
  }
  throw new Error('docker-compose is not installed: the deploy validation needs Debian\'s package (apt-get install docker-compose), which validates compose files offline');
}

function composeConfig(file: string, envFile: string | undefined, quiet = false): { status: number | null; stdout: string; stderr: string } {
  const args = ['-f', file, ...(envFile === undefined ? [] : ['--env-file', envFile]), 'config', ...(quiet ? ['-q'] : [])];
  const r = spawnSync(dockerCompose(), args, { encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '', HOME: tmpdir() }, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {});

describe('docker compose (deploy/compose)', () => {
  let scratch: string;
  let envFile: string;
  const composeFiles = readdirSync(COMPOSE_DIR).filter((f) => /^(docker-)?compose[\w.-]*\.ya?ml$/.test(f));
  const configs = new Map<string, Obj>();

  beforeAll(() => {
    scratch = mkdtempSync(join(tmpdir(), 'deploy-compose-'));
    // The documented first step writes the .env and the secrets; the test runs it into a scratch directory.
    const init = spawnSync('sh', [join(COMPOSE_DIR, 'init.sh'), scratch], { encoding: 'utf8' });
    expect(init.status, init.stderr).toBe(0);
    envFile = join(scratch, '.env');
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('init.sh writes the .env and the secrets, private, and keeps them when run again', () => {
    const env = readFileSync(envFile, 'utf8');
    expect(env).toMatch(/^KAFKA_CLUSTER_ID=[A-Za-z0-9_-]{22}$/m);
    for (const secret of ['grafana-admin-password', 'muroran-city.staff-token', 'jpn-pension-service.staff-token']) {
      expect(readFileSync(join(scratch, 'secrets', secret), 'utf8')).toMatch(/^[0-9a-f]{64}$/);
    }
    const again = spawnSync('sh', [join(COMPOSE_DIR, 'init.sh'), scratch], { encoding: 'utf8' });
    expect(again.status).toBe(0);
    expect(again.stdout).toBe('');
    expect(readFileSync(envFile, 'utf8')).toBe(env);
    expect(readFileSync(join(COMPOSE_DIR, '.gitignore'), 'utf8')).toMatch(/^\/\.env$[\s\S]*^\/secrets\/$/m);
  });

  it('has compose files', () => {
    expect(composeFiles).toContain('docker-compose.yml');
  });

  for (const file of ['docker-compose.yml']) {
    it(`docker-compose config accepts ${file}`, () => {
      const r = composeConfig(join(COMPOSE_DIR, file), envFile);
      expect(r.stderr).not.toMatch(/ERROR/);
      expect(r.status, r.stderr).toBe(0);
      configs.set(file, obj(parse(r.stdout)));
    });
  }

  it('docker-compose config refuses a broken compose file and one started before init.sh', () => {
    const emptyEnv = join(scratch, 'empty.env');
    writeFileSync(emptyEnv, '');
    const missingEnv = composeConfig(join(COMPOSE_DIR, 'docker-compose.yml'), emptyEnv);
    expect(missingEnv.status).not.toBe(0);
    expect(missingEnv.stderr).toContain('run deploy/compose/init.sh first');
    const broken = join(scratch, 'broken.yml');
    writeFileSync(broken, 'services:\n  hub:\n    image: linkage-ledger/hub\n    depends_on: [no-such-service]\n');
    const r = composeConfig(broken, envFile, true);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("depends on service 'no-such-service' which is undefined");
    writeFileSync(broken, 'services:\n  hub:\n    image: linkage-ledger/hub\n    helthcheck: { test: [CMD, "true"] }\n');
    const typo = composeConfig(broken, envFile, true);
    expect(typo.status).not.toBe(0);
    expect(typo.stderr).toContain("Unsupported config option for services.hub: 'helthcheck'");
  });

  it('runs what deploy/README.md says: a KurrentDB cluster, a Redis Cluster, Kafka in KRaft mode, two hubs, both intermediate servers, the portal, Prometheus and Grafana', () => {
    const config = configs.get('docker-compose.yml');
    expect(config, 'docker-compose config ran').toBeDefined();
    const services = obj(config!['services']);
    const env = (name: string): Record<string, string> => obj(obj(services[name])['environment']) as Record<string, string>;
    const image = (name: string): string => String(obj(services[name])['image']);
    const kurrent = Object.keys(services).filter((s) => image(s).includes('kurrentdb'));
    expect(kurrent).toHaveLength(3);
    for (const s of kurrent) {
      expect(env(s)['KURRENTDB_CLUSTER_SIZE']).toBe('3');
      expect(env(s)['KURRENTDB_GOSSIP_SEED']!.split(',')).toHaveLength(2);
    }
    const redis = Object.keys(services).filter((s) => /^redis:/.test(image(s)) && String(obj(services[s])['command'] ?? '').includes('cluster-enabled'));
    expect(redis).toHaveLength(6);
    expect(JSON.stringify(obj(services['redis-cluster-init'])['command'])).toContain('--cluster create');
    const kafka = Object.keys(services).filter((s) => env(s)['KAFKA_PROCESS_ROLES'] !== undefined);
    expect(kafka.length === 1 || kafka.length === 3).toBe(true);
    for (const s of kafka) expect(env(s)['KAFKA_CONTROLLER_QUORUM_VOTERS']!.split(',')).toHaveLength(kafka.length);
    for (const s of ['muroran-city', 'jpn-pension-service', 'portal', 'prometheus', 'grafana']) expect(services[s], s).toBeDefined();
    expect(env('muroran-city')['AGENCY_ID']).toBe('muroran-city');
    expect(env('jpn-pension-service')['AGENCY_ID']).toBe('jpn-pension-service');
    // Health: the hubs and the intermediate servers report ready on /health/ready, asked over HTTPS with a CA.
    for (const s of [...hubServices(services), 'muroran-city', 'jpn-pension-service']) {
      const test = JSON.stringify(obj(obj(services[s])['healthcheck'])['test']);
      expect(test, s).toContain('/health/ready');
      expect(test, s).toMatch(/require\('https'\)\.get\(\{[^}]*ca:/);
      expect(test, s).not.toMatch(/http:\/\/|rejectUnauthorized/);
    }
    // The keys and tokens are Docker secrets from files init.sh made, never values in the file.
    const secrets = obj(config!['secrets']);
    for (const [name, secret] of Object.entries(secrets)) expect(String(obj(secret)['file']), name).toMatch(/\/secrets\/[\w.-]+$/);
    expect(readFileSync(join(COMPOSE_DIR, 'docker-compose.yml'), 'utf8')).not.toMatch(/PASSWORD:\s*(?!\/run\/secrets)\S/);
  });

  it('two hubs with the same configuration but distinct HUB_INSTANCE_IDs, on KurrentDB, a Redis Cluster and Kafka, with variables hub-config.ts reads', () => {
    const services = obj(configs.get('docker-compose.yml')!['services']);
    const hubs = hubServices(services);
    expect(hubs).toHaveLength(2);
    const envs = hubs.map((h) => obj(obj(services[h])['environment']) as Record<string, string>);
    expect(new Set(envs.map((e) => e['HUB_INSTANCE_ID'])).size).toBe(2);
    const { HUB_INSTANCE_ID: _a, ...first } = envs[0]!;
    const { HUB_INSTANCE_ID: _b, ...second } = envs[1]!;
    expect(first).toEqual(second);
    expect(first['HUB_EVENT_STORE']).toMatch(/^kurrentdb:\/\/[^,]+:2113(,[^,]+:2113){2}\?tls=false$/);
    expect(first['HUB_REDIS_CLUSTER']!.split(',').length).toBeGreaterThanOrEqual(3);
    expect(first['HUB_REDIS_URL']).toBeUndefined();
    expect(first['HUB_KAFKA_BROKERS']).toBeDefined();
    expect(first['HUB_TLS']).toBe('on');
    // An agency's TLS key is its own: the hubs certify CSRs only (register-agency.mjs sends one).
    expect(first['HUB_TLS_REQUIRE_CSR']).toBe('on');
    expect(first['HUB_TRUSTED_PROXIES'], 'the router passes TLS through: no proxy header to trust').toBeUndefined();
    const accepted = hubVariables();
    expect(Object.keys(envs[0]!).filter((v) => !accepted.has(v))).toEqual([]);
    const all = acceptedVariables();
    for (const [name, service] of Object.entries(services)) {
      const names = Object.keys(obj(obj(service)['environment']));
      for (const v of names.filter((n) => /^(AGENCY|PORTAL)_/.test(n) && !name.startsWith('register-'))) {
        expect(all[v.split('_')[0] as 'AGENCY' | 'PORTAL'].has(v), `${name}: ${v}`).toBe(true);
      }
    }
  });

  it('the others reach the hubs through hub-router, which passes TLS through to the leader, checked over HTTPS against the CA', () => {
    const services = obj(configs.get('docker-compose.yml')!['services']);
    const hubs = hubServices(services);
    const router = obj(services['hub-router']);
    const networks = obj(router['networks']);
    for (const net of ['agencies', 'front']) expect(obj(networks[net])['aliases'], net).toEqual(['hub']);
    for (const h of hubs) for (const net of Object.values(obj(obj(services[h])['networks']))) expect(obj(net)['aliases'] ?? [], h).not.toContain('hub');
    const cfg = readFileSync(join(COMPOSE_DIR, 'hub-router.cfg'), 'utf8');
    const caFile = CA_MOUNT + '/tls-ca.bundle.pem';
    expect(volumeMounts(router)).toContainEqual({ source: 'hub-ca', target: CA_MOUNT, readOnly: true });
    expect(routerProblems(cfg, { https: hubs.map((h) => `${h}:8080`), grpc: hubs.map((h) => `${h}:9090`) }, caFile)).toEqual([]);
    for (const s of ['portal', 'muroran-city', 'jpn-pension-service', 'register-muroran-city', 'register-jpn-pension-service']) {
      const url = Object.entries(obj(obj(services[s])['environment'])).find(([k]) => k === 'PORTAL_HUB_URL' || k === 'AGENCY_HUB_URL')?.[1];
      expect(url, s).toBe('https://hub:8080');
    }
    // The role the router looks for is the one the hub's readiness reports.
    expect(readFileSync(join(ROOT, 'apps/hub/src/health/health.dto.ts'), 'utf8')).toMatch(/role\??: 'leader' \| 'standby'/);
  });

  it('the router checks find a router ending TLS, reads sent to any hub, a missing hub, an unchecked leader and an unverified check', () => {
    const cfg = readFileSync(join(COMPOSE_DIR, 'hub-router.cfg'), 'utf8');
    const hubs = { https: ['hub-a:8080', 'hub-b:8080'], grpc: ['hub-a:9090', 'hub-b:9090'] };
    const ca = '/etc/hub-ca/tls-ca.bundle.pem';
    const broken = cfg
      .replace('bind :8080', 'bind :8080 ssl crt /etc/hub.pem')
      .replace(/^\s*server hub-b hub-b:9090.*$/m, '')
      .replace(/(backend hub_https_leader[\s\S]*?)http-check expect string '"role":"leader"'/, '$1http-check expect status 200')
      .replace('check-sni hub-a verifyhost hub-a', 'check-sni hub-a');
    expect(routerProblems(broken, hubs, ca)).toEqual([
      'frontend hub_https ends TLS (bind :8080 ssl crt /etc/hub.pem): the router must pass it through',
      'frontend hub_https does not bind :8080',
      `backend hub_https_leader does not expect string '"role":"leader"'`,
      'backend hub_https_leader server hub-a: its check does not verify the name hub-a (check-sni, verifyhost)',
      'backend hub_grpc_leader names hub-a:9090 instead of hub-a:9090, hub-b:9090',
    ]);
    const http = cfg.replace(/^(frontend hub_https\n)/m, '$1  mode http\n  acl read method GET HEAD\n  use_backend hub_any if read\n').replace(/ verify required ca-file \S+/, '');
    expect(routerProblems(http, hubs, ca)).toEqual([
      'frontend hub_https is not in mode tcp: TLS must pass through the router',
      'frontend hub_https does not go to hub_https_leader only',
      ...['hub-a', 'hub-b'].map((h) => `backend hub_https_leader server ${h}: its check is not HTTPS verified against ${ca} (check-ssl verify required ca-file)`),
      ...['hub-a', 'hub-b'].map((h) => `backend hub_grpc_leader server ${h}: its check is not HTTPS verified against ${ca} (check-ssl verify required ca-file)`),
    ]);
  });

  it('TLS: no hub runs with HUB_TLS=off, and the certificate hub-keygen makes names what the hubs are called', () => {
    const services = obj(configs.get('docker-compose.yml')!['services']);
    const hubs = hubServices(services);
    for (const h of hubs) expect(obj(obj(services[h])['environment'])['HUB_TLS'] ?? 'on', h).toBe('on');
    // Comments may name the option; no setting does.
    for (const file of deployFiles()) expect(readFileSync(join(ROOT, file), 'utf8').replace(/^\s*(#|\/\/).*$/gm, ''), file).not.toMatch(TLS_OFF_SETTING);
    for (const setting of ['  HUB_TLS: "off"', '  HUB_TLS: off', '- { name: HUB_TLS, value: "off" }', "env: { HUB_TLS: 'off' }", 'HUB_TLS=off node main.js']) expect(setting).toMatch(TLS_OFF_SETTING);
    expect('  HUB_TLS: "on"').not.toMatch(TLS_OFF_SETTING);
    // hub-keygen makes the hubs' certificate for HUB_TLS_HOSTS and HUB_HOST as the hubs are given them (and
    // 127.0.0.1, where it listens, which the list therefore holds): a hub finds it made for its names.
    const keygen = obj(services['hub-keygen']);
    const keygenEnv = obj(keygen['environment']) as Record<string, string>;
    const hubEnv = obj(obj(services[hubs[0]!])['environment']) as Record<string, string>;
    expect({ HUB_TLS_HOSTS: keygenEnv['HUB_TLS_HOSTS'], HUB_HOST: keygenEnv['HUB_HOST'] }).toEqual({ HUB_TLS_HOSTS: hubEnv['HUB_TLS_HOSTS'], HUB_HOST: hubEnv['HUB_HOST'] });
    const names = hubEnv['HUB_TLS_HOSTS']!.split(',');
    for (const name of ['hub', ...hubs, '127.0.0.1']) expect(names, name).toContain(name);
    expect(keygen['command']).toEqual(['node', 'deploy/hub-keygen.mjs', '/data/keys', '/data']);
    expect(volumeMounts(keygen)).toEqual(expect.arrayContaining([{ source: 'hub-keys', target: '/data/keys', readOnly: false }, { source: 'hub-ca', target: '/data', readOnly: false }]));
    // Both hubs hold the one CA: the same keys volume at their keys dir (writable: a rotation adds the new CA).
    for (const h of hubs) {
      expect(volumeMounts(obj(services[h])), h).toContainEqual({ source: 'hub-keys', target: '/data/keys', readOnly: false });
      expect(obj(obj(obj(services[h])['depends_on'])['hub-keygen'])['condition'], h).toBe('service_completed_successfully');
    }
  });

  it('TLS: every agency is registered with an https:// endpoint of its own server, which serves with the certificate issued to it', () => {
    const services = obj(configs.get('docker-compose.yml')!['services']);
    const registrations = Object.keys(services).filter((s) => s.startsWith('register-'));
    expect(registrations.sort()).toEqual(['register-jpn-pension-service', 'register-muroran-city']);
    for (const r of registrations) {
      const agency = r.slice('register-'.length);
      const job = obj(obj(services[r])['environment']) as Record<string, string>;
      const server = obj(obj(services[agency])['environment']) as Record<string, string>;
      expect(job['AGENCY_ENDPOINT'], r).toBe(`https://${agency}:8090`);
      expect(server['AGENCY_PORT'], agency).toBe('8090');
      // The job keeps the certificate where the server reads it: the same file on the same volume.
      expect(job['AGENCY_TLS_FILE'], r).toBe(server['AGENCY_TLS_FILE']);
      expect(job['AGENCY_TLS_FILE']!.startsWith(`${job['AGENCY_DATA_DIR']}/`), r).toBe(true);
      const dataVolume = (s: string): string | undefined => volumeMounts(obj(services[s])).find((m) => m.target === '/data')?.source;
      expect(dataVolume(r), r).toBe(dataVolume(agency));
      // The job trusts the hubs' CA: a file of a volume it mounts.
      const ca = job['NODE_EXTRA_CA_CERTS'];
      expect(ca, r).toMatch(/tls-ca\.bundle\.pem$/);
      expect(volumeMounts(obj(services[r])).some((m) => ca!.startsWith(`${m.target}/`)), r).toBe(true);
    }
    // The documented Kubernetes registrations too.
    const readme = readFileSync(join(ROOT, 'deploy/README.md'), 'utf8');
    const endpoints = [...readme.matchAll(/"endpoint"\s*:\s*"([^"]+)"/g)].map((m) => m[1]!);
    expect(endpoints.length).toBeGreaterThan(0);
    for (const e of endpoints) expect(e).toMatch(/^https:\/\//);
  });

  it('TLS: the portal, the router and Prometheus trust the CA through hub-ca, which only hub-keygen writes; the hubs\' keys stay with the hubs and the jobs that need them', () => {
    const services = obj(configs.get('docker-compose.yml')!['services']);
    for (const [name, service] of Object.entries(services)) {
      for (const m of volumeMounts(obj(service))) {
        if (m.source === 'hub-ca' && name !== 'hub-keygen') expect(m.readOnly, `${name} mounts hub-ca writable`).toBe(true);
        if (m.source === 'hub-keys') expect(['hub-keygen', ...hubServices(services)].includes(name) || (name.startsWith('register-') && m.readOnly), `${name} mounts hub-keys`).toBe(true);
      }
    }
    const portal = obj(services['portal']);
    expect(volumeMounts(portal)).toContainEqual({ source: 'hub-ca', target: CA_MOUNT, readOnly: true });
    expect(obj(portal['environment'])['NODE_EXTRA_CA_CERTS']).toBe(`${CA_MOUNT}/tls-ca.bundle.pem`);
    for (const s of ['portal', 'hub-router', 'prometheus']) {
      expect(obj(obj(obj(services[s])['depends_on'])['hub-keygen'])['condition'], s).toBe('service_completed_successfully');
    }
  });

  it('Prometheus scrapes /metrics of both hubs and every intermediate server; Grafana provisions its datasource and the dashboards', () => {
    const services = obj(configs.get('docker-compose.yml')!['services']);
    const prometheus = parse(readFileSync(join(ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8')) as { scrape_configs: { job_name: string; metrics_path?: string; scheme?: string; tls_config?: Obj; static_configs: { targets: string[] }[] }[] };
    expect(volumeMounts(obj(services['prometheus']))).toContainEqual({ source: 'hub-ca', target: CA_MOUNT, readOnly: true });
    const targets = prometheus.scrape_configs
      .filter((j) => j.job_name !== 'prometheus')
      .flatMap((j) => {
        expect(j.metrics_path ?? '/metrics').toBe('/metrics');
        // Over HTTPS, verified against the hubs' CA (the intermediate servers' certificates are of it too).
        expect(j.scheme, j.job_name).toBe('https');
        expect(j.tls_config, j.job_name).toEqual({ ca_file: `${CA_MOUNT}/tls-ca.bundle.pem` });
        return j.static_configs.flatMap((s) => s.targets);
      });
    const expected = [...hubServices(services).map((h) => `${h}:8080`), 'muroran-city:8090', 'jpn-pension-service:8090'];
    expect(targets.sort()).toEqual(expected.sort());
    for (const t of targets) expect(services[t.split(':')[0]!], t).toBeDefined();

    const grafana = obj(services['grafana']);
    // docker-compose 1.29 prints volumes as source:target[:mode], newer versions as objects.
    const mounts = (grafana['volumes'] as unknown[]).map((v) => (typeof v === 'string' ? v.split(':').slice(0, 2).join(':') : `${String(obj(v)['source'])}:${String(obj(v)['target'])}`));
    expect(mounts).toContain(`${join(ROOT, 'deploy/grafana/provisioning')}:/etc/grafana/provisioning`);
    expect(mounts).toContain(`${join(ROOT, 'deploy/grafana/dashboards')}:/var/lib/grafana/dashboards`);
    const datasources = parse(readFileSync(join(ROOT, 'deploy/grafana/provisioning/datasources/prometheus.yml'), 'utf8')) as { datasources: Obj[] };
    expect(datasources.datasources).toEqual([expect.objectContaining({ uid: 'prometheus', type: 'prometheus', url: 'http://prometheus:9090' })]);
    const dashboards = parse(readFileSync(join(ROOT, 'deploy/grafana/provisioning/dashboards/linkage-ledger.yml'), 'utf8')) as { providers: { options: { path: string } }[] };
    expect(dashboards.providers.map((p) => p.options.path)).toEqual(['/var/lib/grafana/dashboards']);
    // The dashboard itself (written beside these files) names only the provisioned datasource.
    const dashboard = join(ROOT, 'deploy/grafana/dashboards/linkage-ledger.json');
    if (existsSync(dashboard)) {
      const uids = [...readFileSync(dashboard, 'utf8').matchAll(/"datasource"\s*:\s*\{[^}]*"uid"\s*:\s*"([^"]+)"/g)].map((m) => m[1]);
      for (const uid of uids) expect(['prometheus', '${datasource}', '${DS_PROMETHEUS}', '-- Grafana --']).toContain(uid);
    }
  });
});

/** Where the compose services mount the hubs' public CA certificates (volume hub-ca). */
const CA_MOUNT = '/etc/hub-ca';

/** A setting of HUB_TLS to off, in YAML, an env list or a shell line. */
const TLS_OFF_SETTING = /HUB_TLS["']?\s*(:|=|,\s*value:)\s*["']?off\b/;

/**
 * The deployment's configuration (deploy/compose, deploy/k8s, deploy/prometheus: YAML, HAProxy, shell),
 * repository-relative. Not hub-keygen.mjs: its throwaway hub, on 127.0.0.1 for a few seconds to make the
 * keys, runs without TLS when the CA already exists (so that it leaves the CA's files alone).
 */
function deployFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory()) walk(path);
      else if (/\.(ya?ml|cfg|sh)$/.test(e.name)) out.push(path);
    }
  };
  for (const dir of ['deploy/compose', 'deploy/k8s', 'deploy/prometheus']) walk(dir);
  return out;
}

/** A service's volumes as docker-compose 1.29 prints them (source:target[:mode]) or newer versions (objects). */
function volumeMounts(service: Obj): { source: string; target: string; readOnly: boolean }[] {
  return ((service['volumes'] as unknown[] | undefined) ?? []).map((v) => {
    if (typeof v === 'string') {
      const [source, target, mode] = v.split(':');
      return { source: source!, target: target!, readOnly: mode === 'ro' };
    }
    return { source: String(obj(v)['source']), target: String(obj(v)['target']), readOnly: obj(v)['read_only'] === true };
  });
}

function hubServices(services: Obj): string[] {
  return Object.keys(services).filter((s) => obj(obj(services[s])['environment'])['HUB_INSTANCE_ID'] !== undefined);
}

describe('Kubernetes manifests (deploy/k8s)', () => {
  const manifests = loadManifests(K8S_DIR);
  const accepted = acceptedVariables();
  const clone = (ms: readonly Manifest[]): Manifest[] => ms.map((m) => ({ file: m.file, doc: structuredClone(m.doc) }));
  const find = (ms: readonly Manifest[], kind: string, name: string): Obj => {
    const m = ms.find((x) => x.doc['kind'] === kind && obj(x.doc['metadata'])['name'] === name);
    if (m === undefined) throw new Error(`no ${kind} ${name}`);
    return m.doc;
  };
  const podSpec = (doc: Obj): Obj => obj(obj(obj(doc['spec'])['template'])['spec']);
  const container = (doc: Obj, i = 0): Obj => obj((podSpec(doc)['containers'] as unknown[])[i]);

  it('kustomization.yaml lists every manifest, and only the Secrets without values stay out of it', () => {
    const kustomization = parse(readFileSync(join(K8S_DIR, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
    const files = readdirSync(K8S_DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
    expect([...kustomization.resources].sort()).toEqual(files.sort());
    const secrets = manifests.filter((m) => m.doc['kind'] === 'Secret');
    expect(secrets.length).toBeGreaterThan(0);
    for (const s of secrets) {
      expect(s.file, 'Secrets live apart, never applied from the repository').toMatch(/^deploy\/k8s\/secrets\//);
      expect(s.doc['data'], `${s.file}: a Secret in the repository holds no value`).toBeUndefined();
      expect(s.doc['stringData']).toBeUndefined();
    }
  });

  it('every document is a Kubernetes kind that validates against its schema', async () => {
    expect(manifests.length).toBeGreaterThan(20);
    const problems = (await Promise.all(manifests.map(schemaProblem))).filter((p) => p !== undefined);
    expect(problems).toEqual([]);
  });

  it('names no field the Kubernetes schemas do not know (kubectl refuses them; the validators let them through)', () => {
    expect(fieldProblems(manifests)).toEqual([]);
    const misspelt = clone(manifests);
    const hub = find(misspelt, 'StatefulSet', 'hub');
    const security = obj(container(hub)['securityContext']);
    security['readOnlyRootFileSystem'] = security['readOnlyRootFilesystem'];
    delete security['readOnlyRootFilesystem'];
    expect(fieldProblems(misspelt)).toEqual([expect.stringMatching(/StatefulSet hub: unknown field \/spec\/template\/spec\/containers\/0\/securityContext\/readOnlyRootFileSystem$/)]);
  });

  it('the schema validation refuses an invalid object and an unknown kind', async () => {
    const [statefulSet] = clone(manifests.filter((m) => m.doc['kind'] === 'StatefulSet'));
    (statefulSet!.doc['spec'] as Obj)['replicas'] = 'two';
    expect(await schemaProblem(statefulSet!)).toMatch(/spec\/replicas must be integer/);
    expect(await schemaProblem({ file: 'x.yaml', doc: { apiVersion: 'apps/v1', kind: 'StatefulSett', metadata: { name: 'x' } } })).toMatch(/kind StatefulSett is not in apps\/v1/);
    expect(await schemaProblem({ file: 'x.yaml', doc: { apiVersion: 'example.com/v1', kind: 'Thing', metadata: { name: 'x' } } })).toMatch(/not a Kubernetes API/);
    const service = clone(manifests).find((m) => m.doc['kind'] === 'Service')!;
    ((service.doc['spec'] as Obj)['ports'] as Obj[])[0]!['port'] = '8080x';
    expect(await schemaProblem(service)).toMatch(/port must be integer/);
  });

  it('passes the policy checks: probes, non-root, limits, selectors, Secrets and ConfigMaps, variables the apps read', () => {
    expect(policyProblems(manifests, accepted)).toEqual([]);
  });

  it('the policy checks find each problem of a broken manifest', () => {
    const broken = clone(manifests);
    const hub = find(broken, 'StatefulSet', 'hub');
    const hubContainer = container(hub);
    delete hubContainer['readinessProbe'];
    delete obj(hubContainer['resources'])['limits'];
    obj(hubContainer['securityContext'])['readOnlyRootFilesystem'] = false;
    podSpec(hub)['enableServiceLinks'] = true;
    obj(podSpec(hub)['securityContext'])['runAsUser'] = 0;
    (hubContainer['env'] as Obj[]).push({ name: 'HUB_REDIS_CLUSTERS', value: 'x:1' });
    obj(find(broken, 'ConfigMap', 'hub-config')['data'])['HUB_EVENTSTORE'] = 'kurrentdb://x:2113';
    (podSpec(hub)['volumes'] as Obj[]).push({ name: 'extra', secret: { secretName: 'no-such-secret' } });
    obj(find(broken, 'Service', 'portal')['spec'])['selector'] = { 'app.kubernetes.io/name': 'portl' };
    const agency = find(broken, 'StatefulSet', 'muroran-city');
    obj(obj(container(agency)['livenessProbe'])['httpGet'])['path'] = '/';
    obj(obj(container(agency)['readinessProbe'])['httpGet'])['scheme'] = 'HTTP';
    delete obj(obj(hubContainer['startupProbe'])['httpGet'])['scheme'];
    const problems = policyProblems(broken, accepted);
    const expected = [
      'StatefulSet hub: enableServiceLinks is not false',
      'StatefulSet hub: volume extra names Secret no-such-secret, which no manifest defines',
      'StatefulSet hub container install-keys: runs as user 0',
      'StatefulSet hub container hub: readOnlyRootFilesystem is not true',
      'StatefulSet hub container hub: no cpu limits',
      'StatefulSet hub container hub: no memory limits',
      'StatefulSet hub container hub: HUB_REDIS_CLUSTERS is not a variable the hub reads',
      'StatefulSet hub container hub: serves HTTP but has no readinessProbe over HTTP',
      'StatefulSet hub container hub: readiness is not GET /health/ready',
      'StatefulSet muroran-city container agency-node: liveness is not GET /health/live',
      'StatefulSet muroran-city container agency-node: readinessProbe is not over HTTPS',
      'StatefulSet hub container hub: startupProbe is not over HTTPS',
      'ConfigMap hub-config: HUB_EVENTSTORE is not a variable the hub reads',
      'Service portal: selector {"app.kubernetes.io/name":"portl"} matches no workload\'s pod labels',
    ];
    for (const e of expected) expect(problems.some((p) => p.endsWith(e)), `${e}\n in\n${problems.join('\n')}`).toBe(true);
    expect(problems.length).toBeGreaterThanOrEqual(expected.length);
  });

  it('NetworkPolicies: default deny; only hub pods reach the intermediate servers; only hubs (and peers) reach KurrentDB, Redis and Kafka', () => {
    expect(networkProblems(manifests)).toEqual([]);
  });

  it('the NetworkPolicy checks find an intermediate server open to others, a missing default deny and a backend open to the portal', () => {
    const open = clone(manifests);
    const agencyPolicy = find(open, 'NetworkPolicy', 'agency-node-from-hub-only');
    ((obj(agencyPolicy['spec'])['ingress'] as Obj[])[0]!['from'] as Obj[]).push({ ipBlock: { cidr: '0.0.0.0/0' } });
    expect(networkProblems(open)).toEqual([expect.stringContaining('admits {"ipBlock":{"cidr":"0.0.0.0/0"}} to agency-node pods; only hub pods may reach them')]);

    const wide = clone(manifests);
    const deny = find(wide, 'NetworkPolicy', 'default-deny-ingress');
    obj(deny['spec'])['ingress'] = [{ from: [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'portal' } } }] }];
    const problems = networkProblems(wide);
    expect(problems).toContain('no default-deny ingress NetworkPolicy (podSelector {}, policyTypes [Ingress], no rules)');
    for (const target of ['agency-node', 'kurrentdb', 'redis-cluster', 'kafka']) {
      expect(problems.some((p) => p.includes(`admits {"podSelector":{"matchLabels":{"app.kubernetes.io/name":"portal"}}} to ${target} pods`)), target).toBe(true);
    }

    const closed = clone(manifests).filter((m) => obj(m.doc['metadata'])['name'] !== 'agency-node-from-hub-only');
    expect(networkProblems(closed)).toEqual(['no NetworkPolicy admits hub pods to agency-node pods']);
  });

  it('the Service hub is hub-router: TLS passed through to the leader, checked over HTTPS against the CA of ConfigMap hub-ca', () => {
    const service = find(manifests, 'Service', 'hub');
    expect(obj(service['spec'])['selector']).toEqual({ 'app.kubernetes.io/name': 'hub-router' });
    const pods = ['hub-0', 'hub-1'].map((p) => `${p}.hub-headless.linkage-ledger.svc.cluster.local`);
    const router = find(manifests, 'Deployment', 'hub-router');
    const caMount = (container(router)['volumeMounts'] as Obj[]).find((m) => m['name'] === 'hub-ca')?.['mountPath'];
    expect((podSpec(router)['volumes'] as Obj[]).find((v) => v['name'] === 'hub-ca')).toEqual({ name: 'hub-ca', configMap: { name: 'hub-ca' } });
    const cfg = String(obj(find(manifests, 'ConfigMap', 'hub-router')['data'])['haproxy.cfg']);
    expect(routerProblems(cfg, { https: pods.map((p) => `${p}:8080`), grpc: pods.map((p) => `${p}:9090`) }, `${String(caMount)}/tls-ca.bundle.pem`)).toEqual([]);
    expect(obj(find(manifests, 'StatefulSet', 'hub')['spec'])['serviceName']).toBe('hub-headless');
  });

  it('TLS: the hubs run with HUB_TLS=on, their certificate names the Service hub and each pod, every client trusts the CA and calls https', () => {
    const hubConfig = obj(find(manifests, 'ConfigMap', 'hub-config')['data']) as Record<string, string>;
    expect(hubConfig['HUB_TLS']).toBe('on');
    expect(hubConfig['HUB_TLS_REQUIRE_CSR']).toBe('on');
    expect(hubConfig['HUB_TRUSTED_PROXIES'], 'the router passes TLS through: no proxy header to trust').toBeUndefined();
    const names = hubConfig['HUB_TLS_HOSTS']!.split(',');
    // The documented hub-keygen run makes the certificate for these same names (and HUB_HOST).
    const readme = readFileSync(join(ROOT, 'deploy/README.md'), 'utf8');
    expect(/-e HUB_TLS_HOSTS=(\S+)/.exec(readme)?.[1]).toBe(hubConfig['HUB_TLS_HOSTS']);
    expect(/-e HUB_HOST=(\S+)/.exec(readme)?.[1]).toBe(hubConfig['HUB_HOST']);
    for (const name of ['hub.linkage-ledger.svc.cluster.local', 'hub-0.hub-headless.linkage-ledger.svc.cluster.local', 'hub-1.hub-headless.linkage-ledger.svc.cluster.local', '127.0.0.1']) expect(names, name).toContain(name);
    const env = (doc: Obj): Record<string, string> => Object.fromEntries((container(doc)['env'] as Obj[]).filter((e) => typeof e['value'] === 'string').map((e) => [String(e['name']), String(e['value'])]));
    for (const agency of ['muroran-city', 'jpn-pension-service']) {
      const doc = find(manifests, 'StatefulSet', agency);
      const e = env(doc);
      expect(e['AGENCY_HUB_URL'], agency).toBe('https://hub.linkage-ledger.svc.cluster.local:8080');
      // The certificate issued at registration, from the agency's Secret.
      expect(e['AGENCY_TLS_FILE'], agency).toBe('/etc/agency/hub-tls.json');
      expect((container(doc)['volumeMounts'] as Obj[]).find((m) => m['mountPath'] === '/etc/agency')?.['name']).toBe('agency-secrets');
      // The server's own TLS key (its CSR was certified) from the Secret into its keys dir, where the node reads it.
      expect(JSON.stringify((podSpec(doc)['initContainers'] as Obj[])[0]!['command'])).toContain('install -m 0600 /etc/agency/tls-key.pem /data/keys/tls-key.pem');
      expect(obj(obj(obj(doc['spec'])['template'])['metadata'])['annotations']).toMatchObject({ 'prometheus.io/scheme': 'https' });
    }
    const portal = find(manifests, 'Deployment', 'portal');
    expect(env(portal)['PORTAL_HUB_URL']).toBe('https://hub.linkage-ledger.svc.cluster.local:8080');
    const caMount = (container(portal)['volumeMounts'] as Obj[]).find((m) => m['name'] === 'hub-ca')?.['mountPath'];
    expect(env(portal)['NODE_EXTRA_CA_CERTS']).toBe(`${String(caMount)}/tls-ca.bundle.pem`);
    expect(obj(obj(obj(find(manifests, 'StatefulSet', 'hub')['spec'])['template'])['metadata'])['annotations']).toMatchObject({ 'prometheus.io/scheme': 'https' });
    // The ConfigMap hub-ca is made at first start, like the Secrets: declared without its data, never applied from here.
    const hubCa = manifests.find((m) => m.doc['kind'] === 'ConfigMap' && obj(m.doc['metadata'])['name'] === 'hub-ca')!;
    expect(hubCa.file).toMatch(/^deploy\/k8s\/secrets\//);
    expect(hubCa.doc['data']).toBeUndefined();
  });

  it('what deploy/README.md says: KurrentDB ×3, Redis Cluster ×6, Kafka in KRaft mode, hub ×2 each named by its pod, each agency its own server', () => {
    expect(obj(find(manifests, 'StatefulSet', 'kurrentdb')['spec'])['replicas']).toBe(3);
    expect(obj(find(manifests, 'StatefulSet', 'redis-cluster')['spec'])['replicas']).toBe(6);
    expect(obj(find(manifests, 'ConfigMap', 'kafka-cluster')['data'])['KAFKA_PROCESS_ROLES']).toBe('broker,controller');
    const hub = find(manifests, 'StatefulSet', 'hub');
    expect(obj(hub['spec'])['replicas']).toBe(2);
    expect((container(hub)['env'] as Obj[]).find((e) => e['name'] === 'HUB_INSTANCE_ID')).toEqual({ name: 'HUB_INSTANCE_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } });
    for (const agency of ['muroran-city', 'jpn-pension-service']) {
      const env = container(find(manifests, 'StatefulSet', agency))['env'] as Obj[];
      expect(env.find((e) => e['name'] === 'AGENCY_ID')?.['value']).toBe(agency);
    }
    const pdbs = manifests.filter((m) => m.doc['kind'] === 'PodDisruptionBudget').map((m) => obj(m.doc['metadata'])['name']);
    expect(pdbs.sort()).toEqual(['hub', 'hub-router', 'kafka', 'kurrentdb', 'portal', 'redis-cluster']);
  });

  it('compose and Kubernetes give the hubs the same variables, all of them ones hub-config.ts reads', () => {
    const config = composeHubVariables();
    const hub = find(manifests, 'StatefulSet', 'hub');
    const k8s = new Set([...Object.keys(obj(find(manifests, 'ConfigMap', 'hub-config')['data'])), ...(container(hub)['env'] as Obj[]).map((e) => String(e['name']))]);
    expect([...k8s].sort()).toEqual([...config].sort());
    const accepted = hubVariables();
    expect([...k8s].filter((v) => !accepted.has(v))).toEqual([]);
    for (const fixed of ['HUB_EVENT_STORE', 'HUB_INSTANCE_ID', 'HUB_REDIS_CLUSTER', 'HUB_KAFKA_BROKERS']) expect(k8s.has(fixed), fixed).toBe(true);
    // hubVariables reads hub-config.ts's own list: a name it does not hold is refused.
    expect(hubVariables("const VARIABLES = ['HUB_HOST', 'HUB_PORT'] as const;")).toEqual(new Set(['HUB_HOST', 'HUB_PORT']));
    expect(() => hubVariables('export const X = 1;')).toThrow(/no `const VARIABLES/);
  });
});

/** The hub variables of the compose file, as written (x-hub-env and HUB_INSTANCE_ID). */
function composeHubVariables(): Set<string> {
  const compose = parse(readFileSync(join(COMPOSE_DIR, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, { environment?: Record<string, string> }> };
  const hubs = Object.values(compose.services).filter((s) => s.environment?.['HUB_INSTANCE_ID'] !== undefined);
  expect(hubs).toHaveLength(2);
  return new Set(Object.keys(hubs[0]!.environment!));
}
