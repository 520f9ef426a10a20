// The deployment files, validated offline: no image is pulled or built and no cluster is needed.
// - every app's Dockerfile: multi-stage, non-root, no dev dependencies, COPY sources present;
// - deploy/compose: Debian's `docker-compose config` (docker-compose 1.29, apt package docker-compose)
//   accepts each compose file, and the services are what deploy/README.md says;
// - deploy/k8s: every document validates against its Kubernetes schema (kubernetes-models), and the
//   policy checks a reviewer wants (probes, non-root, limits, selectors, Secrets, NetworkPolicies);
// - the hub variables compose and Kubernetes set are the same and are all ones hub-config.ts reads.
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
    // Health: the hubs and the intermediate servers report ready on /health/ready.
    for (const s of [...hubServices(services), 'muroran-city', 'jpn-pension-service']) {
      expect(JSON.stringify(obj(obj(services[s])['healthcheck'])['test']), s).toContain('/health/ready');
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

  it('the others reach the hubs through hub-router: reads to either hub, commands and gRPC to the leader, X-Forwarded-For only from the portal, which the hubs trust', () => {
    const services = obj(configs.get('docker-compose.yml')!['services']);
    const hubs = hubServices(services);
    const router = obj(services['hub-router']);
    const networks = obj(router['networks']);
    for (const net of ['agencies', 'front']) expect(obj(networks[net])['aliases'], net).toEqual(['hub']);
    for (const h of hubs) for (const net of Object.values(obj(obj(services[h])['networks']))) expect(obj(net)['aliases'] ?? [], h).not.toContain('hub');
    const routerIps = Object.values(networks).map((n) => String(obj(n)['ipv4_address']));
    for (const h of hubs) expect(String(obj(obj(services[h])['environment'])['HUB_TRUSTED_PROXIES']).split(',').sort()).toEqual([...routerIps].sort());
    const portalIp = String(obj(obj(obj(services['portal'])['networks'])['front'])['ipv4_address']);
    const cfg = readFileSync(join(COMPOSE_DIR, 'hub-router.cfg'), 'utf8');
    expect(routerProblems(cfg, { http: hubs.map((h) => `${h}:8080`), grpc: hubs.map((h) => `${h}:9090`) }, portalIp)).toEqual([]);
    for (const s of ['portal', 'muroran-city', 'jpn-pension-service', 'register-muroran-city']) {
      const url = Object.entries(obj(obj(services[s])['environment'])).find(([k]) => k === 'PORTAL_HUB_URL' || k === 'AGENCY_HUB_URL')?.[1];
      expect(url, s).toBe('http://hub:8080');
    }
    // The role the router looks for is the one the hub's readiness reports.
    expect(readFileSync(join(ROOT, 'apps/hub/src/health/health.dto.ts'), 'utf8')).toMatch(/role\??: 'leader' \| 'standby'/);
  });

  it('the router checks find commands sent to any hub, a missing hub, an unchecked leader and a forwarded header from anyone', () => {
    const cfg = readFileSync(join(COMPOSE_DIR, 'hub-router.cfg'), 'utf8');
    const hubs = { http: ['hub-a:8080', 'hub-b:8080'], grpc: ['hub-a:9090', 'hub-b:9090'] };
    const broken = cfg
      .replace('default_backend hub_leader', 'default_backend hub_any')
      .replace(/^\s*server hub-b hub-b:9090.*$/m, '')
      .replace(/(backend hub_leader[\s\S]*?)http-check expect string '"role":"leader"'/, '$1http-check expect status 200')
      .replace(/^\s*http-request del-header X-Forwarded-For.*$/m, '');
    expect(routerProblems(broken, hubs, '172.28.0.10')).toEqual([
      'frontend hub_http does not send GET/HEAD to hub_any and everything else to hub_leader',
      'X-Forwarded-For is not dropped unless it comes from the portal (172.28.0.10)',
      `backend hub_leader does not expect string '"role":"leader"'`,
      'backend hub_grpc_leader names hub-a:9090 instead of hub-a:9090, hub-b:9090',
    ]);
  });

  it('Prometheus scrapes /metrics of both hubs and every intermediate server; Grafana provisions its datasource and the dashboards', () => {
    const services = obj(configs.get('docker-compose.yml')!['services']);
    const prometheus = parse(readFileSync(join(ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8')) as { scrape_configs: { job_name: string; metrics_path?: string; static_configs: { targets: string[] }[] }[] };
    const targets = prometheus.scrape_configs
      .filter((j) => j.job_name !== 'prometheus')
      .flatMap((j) => {
        expect(j.metrics_path ?? '/metrics').toBe('/metrics');
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

  it('the Service hub is hub-router: reads to either hub pod, commands and gRPC to the leader', () => {
    const service = find(manifests, 'Service', 'hub');
    expect(obj(service['spec'])['selector']).toEqual({ 'app.kubernetes.io/name': 'hub-router' });
    const pods = ['hub-0', 'hub-1'].map((p) => `${p}.hub-headless.linkage-ledger.svc.cluster.local`);
    const cfg = String(obj(find(manifests, 'ConfigMap', 'hub-router')['data'])['haproxy.cfg']);
    expect(routerProblems(cfg, { http: pods.map((p) => `${p}:8080`), grpc: pods.map((p) => `${p}:9090`) }, '10.0.0.0/8')).toEqual([]);
    expect(obj(find(manifests, 'StatefulSet', 'hub')['spec'])['serviceName']).toBe('hub-headless');
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
