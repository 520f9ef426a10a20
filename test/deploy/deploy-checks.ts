// The checks of the deployment files (Dockerfiles, docker compose, Kubernetes manifests) as functions that
// return the problems they find, so that the tests can show each one finding a broken input.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';

export const ROOT = join(import.meta.dirname, '..', '..');

// ---------------------------------------------------------------- Dockerfiles

export interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly line: number;
}

export interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

/** Instructions of a Dockerfile: comments dropped, `\` continuations joined, keywords upper-cased. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i]!;
    if (/^\s*(#|$)/.test(line)) continue;
    while (/\\\s*$/.test(line) && i + 1 < lines.length) {
      i++;
      const next = lines[i]!;
      line = line.replace(/\\\s*$/, ' ') + (/^\s*#/.test(next) ? '' : next);
    }
    const m = /^\s*([A-Za-z]+)\s+([\s\S]*)$/.exec(line);
    if (m) out.push({ keyword: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start + 1 });
  }
  return out;
}

/** The stages (FROM … [AS name]) with the global ARG defaults substituted into their base image. */
export function stagesOf(instructions: readonly Instruction[]): Stage[] {
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'ARG' && stages.length === 0) {
      const [name, value] = ins.args.split('=', 2);
      if (value !== undefined) args.set(name!.trim(), value.trim());
    } else if (ins.keyword === 'FROM') {
      const parts = ins.args.split(/\s+/).filter((p) => !p.startsWith('--'));
      const image = parts[0]!.replace(/\$\{?(\w+)\}?/g, (_, n: string) => args.get(n) ?? `\${${n}}`);
      stages.push({ from: image, name: parts[1]?.toUpperCase() === 'AS' ? parts[2] : undefined, instructions: [] });
    } else if (stages.length > 0) {
      stages.at(-1)!.instructions.push(ins);
    }
  }
  return stages;
}

/** .dockerignore patterns (negations dropped: a path a pattern excludes is reported even if re-included). */
export function dockerignorePatterns(text: string): RegExp[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('!'))
    .map((p) => p.replace(/^\/+|\/+$/g, ''))
    .map((p) => {
      const re = p
        .split('/')
        .map((seg) => (seg === '**' ? '(?:.*/)?' : `${seg.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}/`))
        .join('');
      // A pattern excludes the path itself and everything under it.
      return new RegExp(`^${re.replace(/\/$/, '')}(?:/.*)?$`);
    });
}

export interface DockerfileExpectations {
  /** The app serves HTTP: the final stage must EXPOSE a port and have a HEALTHCHECK (on this path if given). */
  readonly serves?: { readonly port: number; readonly healthPath: string };
}

/**
 * What is wrong with a Dockerfile: fewer than two stages; a final stage that runs as root, installs
 * packages with npm other than `--omit=dev`, or is not a slim Node 20/22 image; a COPY from the build
 * context of a path the repository does not have or .dockerignore leaves out; a COPY --from an unknown
 * stage; no `npm run build` in an earlier stage; a server without EXPOSE or HEALTHCHECK.
 */
export function dockerfileProblems(text: string, ignore: readonly RegExp[], expect: DockerfileExpectations, root: string = ROOT): string[] {
  const problems: string[] = [];
  const stages = stagesOf(parseDockerfile(text));
  if (stages.length < 2) return [`${stages.length} FROM stage(s): a multi-stage build has at least 2`];
  const final = stages.at(-1)!;
  if (!/^node:(20|22)(\.[\d.]+)?-(bookworm|trixie)-slim$/.test(final.from)) problems.push(`final stage FROM ${final.from}: expected node:20/22-<debian>-slim`);
  const users = final.instructions.filter((i) => i.keyword === 'USER');
  const user = users.at(-1)?.args.split(':')[0];
  if (user === undefined) problems.push('final stage has no USER: it would run as root');
  else if (user === 'root' || user === '0') problems.push(`final stage runs as USER ${user}`);
  for (const ins of final.instructions.filter((i) => i.keyword === 'RUN')) {
    for (const m of ins.args.matchAll(/\bnpm\s+(install|i|ci|add)\b([^&;|]*)/g)) {
      if (!/--omit[= ]dev|--production\b/.test(m[2]!)) problems.push(`final stage line ${ins.line}: npm ${m[1]} without --omit=dev installs dev dependencies`);
    }
  }
  if (!stages.slice(0, -1).some((s) => s.instructions.some((i) => i.keyword === 'RUN' && /\bnpm run build\b/.test(i.args)))) {
    problems.push('no earlier stage runs npm run build');
  }
  const names = new Set<string>();
  stages.forEach((stage, index) => {
    for (const ins of stage.instructions.filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD')) {
      const words = ins.args.split(/\s+/);
      const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
      const paths = words.filter((w) => !w.startsWith('--'));
      if (from !== undefined) {
        if (!names.has(from) && !/^\d+$/.test(from) && !from.includes(':')) problems.push(`line ${ins.line}: COPY --from=${from}: no earlier stage of that name`);
        continue;
      }
      for (const source of paths.slice(0, -1)) {
        const path = source.replace(/^\.\//, '').replace(/\/$/, '');
        if (!existsSync(join(root, path))) problems.push(`line ${ins.line}: COPY ${source}: no such path in the repository`);
        else if (ignore.some((re) => re.test(path))) problems.push(`line ${ins.line}: COPY ${source}: .dockerignore leaves it out of the build context`);
      }
    }
    if (stage.name !== undefined) names.add(stage.name);
    void index;
  });
  if (expect.serves) {
    const exposed = final.instructions.filter((i) => i.keyword === 'EXPOSE').flatMap((i) => i.args.split(/\s+/)).map((p) => Number(p.split('/')[0]));
    if (!exposed.includes(expect.serves.port)) problems.push(`final stage does not EXPOSE ${expect.serves.port}`);
    const health = final.instructions.find((i) => i.keyword === 'HEALTHCHECK');
    if (health === undefined) problems.push('final stage has no HEALTHCHECK');
    else if (!health.args.includes(expect.serves.healthPath)) problems.push(`HEALTHCHECK does not ask ${expect.serves.healthPath}`);
  }
  return problems;
}

// ---------------------------------------------------------------- variables the apps accept

/** The HUB_* variables hub-config.ts reads: its VARIABLES list (loadHubConfig reads exactly these). */
export function hubVariables(source: string = readFileSync(join(ROOT, 'apps/hub/src/config/hub-config.ts'), 'utf8')): Set<string> {
  const list = /const VARIABLES\s*=\s*\[([\s\S]*?)\]/.exec(source);
  if (list === null) throw new Error('apps/hub/src/config/hub-config.ts has no `const VARIABLES = [...]` list to read the accepted variables from');
  return new Set([...list[1]!.matchAll(/['"](HUB_[A-Z0-9_]+)['"]/g)].map((m) => m[1]!));
}

/** Every `PREFIX_NAME` a config source names in quotes (the agency node's and the portal's config read them so). */
export function quotedVariables(file: string, prefix: string): Set<string> {
  const source = readFileSync(join(ROOT, file), 'utf8');
  return new Set([...source.matchAll(new RegExp(`['"](${prefix}_[A-Z0-9_]+)['"]`, 'g'))].map((m) => m[1]!));
}

export interface AcceptedVariables {
  readonly HUB: ReadonlySet<string>;
  readonly AGENCY: ReadonlySet<string>;
  readonly PORTAL: ReadonlySet<string>;
}

export function acceptedVariables(): AcceptedVariables {
  return {
    HUB: hubVariables(),
    AGENCY: quotedVariables('apps/agency-node/src/config/agency-config.ts', 'AGENCY'),
    PORTAL: quotedVariables('apps/portal/src/config/portal-config.ts', 'PORTAL'),
  };
}

/** Variables of an app's prefix that the app does not read (a typo is a setting silently ignored). */
export function unknownVariables(names: Iterable<string>, accepted: AcceptedVariables, where: string): string[] {
  const problems: string[] = [];
  for (const name of names) {
    const prefix = /^(HUB|AGENCY|PORTAL)_/.exec(name)?.[1] as keyof AcceptedVariables | undefined;
    if (prefix !== undefined && !accepted[prefix].has(name)) problems.push(`${where}: ${name} is not a variable the ${prefix.toLowerCase()} reads`);
  }
  return problems;
}

// ---------------------------------------------------------------- Kubernetes

export type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export interface Manifest {
  readonly file: string;
  readonly doc: Obj;
}

/** Every YAML document of every .yaml file under a directory (kustomization.yaml apart). */
export function loadManifests(dir: string): Manifest[] {
  const out: Manifest[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.ya?ml$/.test(name) && name !== 'kustomization.yaml') {
        for (const document of parseAllDocuments(readFileSync(path, 'utf8'))) {
          if (document.errors.length > 0) throw new Error(`${relative(ROOT, path)}: ${document.errors[0]!.message}`);
          const doc = document.toJS() as unknown;
          if (doc !== null && doc !== undefined) out.push({ file: relative(ROOT, path), doc: obj(doc) });
        }
      }
    }
  };
  walk(dir);
  return out;
}

const label = (m: Manifest): string => `${m.file}: ${str(m.doc['kind']) ?? '?'} ${str(obj(m.doc['metadata'])['name']) ?? '?'}`;

/**
 * Validates one document against the Kubernetes schema of its apiVersion and kind (kubernetes-models):
 * undefined when valid, else the problem. A kind kubernetes-models does not know is a problem too.
 */
export async function schemaProblem(m: Manifest): Promise<string | undefined> {
  const apiVersion = str(m.doc['apiVersion']);
  const kind = str(m.doc['kind']);
  if (apiVersion === undefined || kind === undefined) return `${label(m)}: no apiVersion or kind`;
  let models: Record<string, unknown>;
  try {
    const specifier = `kubernetes-models/${apiVersion}`;
    models = (await import(/* @vite-ignore */ specifier)) as Record<string, unknown>;
  } catch {
    return `${label(m)}: apiVersion ${apiVersion} is not a Kubernetes API kubernetes-models knows`;
  }
  const Model = models[kind] as (new (data: Obj) => { validate(): void }) | undefined;
  if (typeof Model !== 'function') return `${label(m)}: kind ${kind} is not in ${apiVersion}`;
  try {
    new Model(m.doc).validate();
    return undefined;
  } catch (error) {
    return `${label(m)}: ${error instanceof Error ? error.message : String(error)}`;
  }
}

const WORKLOADS = new Set(['StatefulSet', 'Deployment', 'DaemonSet', 'Job']);

interface Workload {
  readonly m: Manifest;
  readonly namespace: string | undefined;
  readonly labels: Obj;
  readonly pod: Obj;
}

function workloads(manifests: readonly Manifest[]): Workload[] {
  return manifests
    .filter((m) => WORKLOADS.has(str(m.doc['kind']) ?? ''))
    .map((m) => {
      const template = obj(obj(m.doc['spec'])['template']);
      return { m, namespace: str(obj(m.doc['metadata'])['namespace']), labels: obj(obj(template['metadata'])['labels']), pod: obj(template['spec']) };
    });
}

const matches = (selector: Obj, labels: Obj): boolean => Object.entries(selector).every(([k, v]) => labels[k] === v);

/** Our own images: their root file systems are read-only. */
const OWN_IMAGE = /^linkage-ledger\//;

/**
 * The policy a reviewer wants of the manifests: pods non-root with RuntimeDefault seccomp and no service
 * links (a Service named hub would add HUB_PORT=tcp://… to the hub's environment); every container with
 * resource requests and limits, no privilege escalation, every capability dropped, our own images on a
 * read-only root; every container that serves HTTP probed for liveness and readiness (the hub and the
 * intermediate servers on /health/live and /health/ready); Services and PodDisruptionBudgets selecting
 * some workload; every Secret and ConfigMap referenced present; app variables that the apps read.
 */
export function policyProblems(manifests: readonly Manifest[], accepted: AcceptedVariables): string[] {
  const problems: string[] = [];
  const all = workloads(manifests);
  const named = (kind: string): Set<string> =>
    new Set(manifests.filter((m) => m.doc['kind'] === kind).map((m) => str(obj(m.doc['metadata'])['name']) ?? ''));
  const secrets = named('Secret');
  const configMaps = named('ConfigMap');
  for (const w of all) {
    const where = label(w.m);
    const podSecurity = obj(w.pod['securityContext']);
    if (w.pod['enableServiceLinks'] !== false) problems.push(`${where}: enableServiceLinks is not false`);
    if (str(obj(podSecurity['seccompProfile'])['type']) !== 'RuntimeDefault') problems.push(`${where}: no RuntimeDefault seccomp profile`);
    for (const volume of arr(w.pod['volumes']).map(obj)) {
      const secret = str(obj(volume['secret'])['secretName']);
      if (secret !== undefined && !secrets.has(secret)) problems.push(`${where}: volume ${str(volume['name'])} names Secret ${secret}, which no manifest defines`);
      const configMap = str(obj(volume['configMap'])['name']);
      if (configMap !== undefined && !configMaps.has(configMap)) problems.push(`${where}: volume ${str(volume['name'])} names ConfigMap ${configMap}, which no manifest defines`);
    }
    const containers = [...arr(w.pod['initContainers']).map((c) => ({ c: obj(c), init: true })), ...arr(w.pod['containers']).map((c) => ({ c: obj(c), init: false }))];
    for (const { c, init } of containers) {
      const at = `${where} container ${str(c['name'])}`;
      const security = obj(c['securityContext']);
      if (podSecurity['runAsNonRoot'] !== true && security['runAsNonRoot'] !== true) problems.push(`${at}: runAsNonRoot is not true`);
      if (podSecurity['runAsUser'] === 0 || security['runAsUser'] === 0) problems.push(`${at}: runs as user 0`);
      if (security['allowPrivilegeEscalation'] !== false) problems.push(`${at}: allowPrivilegeEscalation is not false`);
      if (!arr(obj(security['capabilities'])['drop']).includes('ALL')) problems.push(`${at}: does not drop ALL capabilities`);
      if (OWN_IMAGE.test(str(c['image']) ?? '') && security['readOnlyRootFilesystem'] !== true) problems.push(`${at}: readOnlyRootFilesystem is not true`);
      const resources = obj(c['resources']);
      for (const kind of ['requests', 'limits'] as const) {
        for (const r of ['cpu', 'memory']) if (obj(resources[kind])[r] === undefined) problems.push(`${at}: no ${r} ${kind}`);
      }
      const env = arr(c['env']).map(obj);
      for (const e of env) {
        const ref = obj(obj(e['valueFrom'])['secretKeyRef']);
        if (str(ref['name']) !== undefined && !secrets.has(str(ref['name'])!)) problems.push(`${at}: env ${str(e['name'])} names Secret ${str(ref['name'])}, which no manifest defines`);
        const cref = obj(obj(e['valueFrom'])['configMapKeyRef']);
        if (str(cref['name']) !== undefined && !configMaps.has(str(cref['name'])!)) problems.push(`${at}: env ${str(e['name'])} names ConfigMap ${str(cref['name'])}, which no manifest defines`);
      }
      for (const from of arr(c['envFrom']).map(obj)) {
        const cm = str(obj(from['configMapRef'])['name']);
        if (cm !== undefined && !configMaps.has(cm)) problems.push(`${at}: envFrom names ConfigMap ${cm}, which no manifest defines`);
        const s = str(obj(from['secretRef'])['name']);
        if (s !== undefined && !secrets.has(s)) problems.push(`${at}: envFrom names Secret ${s}, which no manifest defines`);
      }
      problems.push(...unknownVariables(env.map((e) => str(e['name']) ?? ''), accepted, at));
      if (init) continue;
      const ports = arr(c['ports']).map(obj);
      const app = str(w.labels['app.kubernetes.io/name']);
      // The hub and the intermediate servers serve TLS only (docs/tls.md): their port is named https.
      if ((app === 'hub' || app === 'agency-node') && ports.some((p) => p['name'] === 'http')) problems.push(`${at}: serves plain HTTP (a port named http): the hub and the intermediate servers serve HTTPS`);
      const web = ports.find((p) => p['name'] === 'http' || p['name'] === 'https');
      if (web !== undefined) {
        for (const probe of ['livenessProbe', 'readinessProbe'] as const) {
          if (obj(obj(c[probe])['httpGet'])['path'] === undefined) problems.push(`${at}: serves HTTP but has no ${probe} over HTTP`);
        }
        if (app === 'hub' || app === 'agency-node') {
          if (obj(obj(c['livenessProbe'])['httpGet'])['path'] !== '/health/live') problems.push(`${at}: liveness is not GET /health/live`);
          if (obj(obj(c['readinessProbe'])['httpGet'])['path'] !== '/health/ready') problems.push(`${at}: readiness is not GET /health/ready`);
        }
      }
      // A probe of a TLS port asks over HTTPS (the kubelet's default, HTTP, would fail the handshake), and
      // every probe of the hub and the intermediate servers is one.
      for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe'] as const) {
        const get = obj(obj(c[probe])['httpGet']);
        if (Object.keys(get).length === 0) continue;
        const port = ports.find((p) => p['name'] === get['port'] || p['containerPort'] === get['port']);
        const https = get['scheme'] === 'HTTPS';
        if ((port?.['name'] === 'https' || app === 'hub' || app === 'agency-node') && !https) problems.push(`${at}: ${probe} is not over HTTPS`);
        if (port?.['name'] === 'http' && https) problems.push(`${at}: ${probe} asks a plain HTTP port over HTTPS`);
      }
    }
  }
  for (const m of manifests.filter((x) => x.doc['kind'] === 'ConfigMap')) {
    problems.push(...unknownVariables(Object.keys(obj(m.doc['data'])), accepted, label(m)));
  }
  for (const m of manifests.filter((x) => x.doc['kind'] === 'Service' || x.doc['kind'] === 'PodDisruptionBudget')) {
    const spec = obj(m.doc['spec']);
    const selector = m.doc['kind'] === 'Service' ? obj(spec['selector']) : obj(obj(spec['selector'])['matchLabels']);
    if (Object.keys(selector).length === 0) problems.push(`${label(m)}: selects nothing`);
    else if (!all.some((w) => matches(selector, w.labels))) problems.push(`${label(m)}: selector ${JSON.stringify(selector)} matches no workload's pod labels`);
  }
  for (const w of all.filter((x) => x.m.doc['kind'] !== 'Job')) {
    const selector = obj(obj(obj(w.m.doc['spec'])['selector'])['matchLabels']);
    if (!matches(selector, w.labels)) problems.push(`${label(w.m)}: its selector does not match its own pod labels`);
  }
  return problems;
}

/** Pod labels of the hub. */
export const HUB_POD = { 'app.kubernetes.io/name': 'hub' };

/**
 * NetworkPolicy problems: no default deny of ingress; an intermediate server's pods admitting anything but
 * hub pods (any policy that selects them counts, a namespace-wide one included); a backend (KurrentDB,
 * Redis, Kafka) admitting anything but hub pods, its own peers and its init job.
 */
export function networkProblems(manifests: readonly Manifest[]): string[] {
  const problems: string[] = [];
  const policies = manifests.filter((m) => m.doc['kind'] === 'NetworkPolicy');
  const defaultDeny = policies.some((p) => {
    const spec = obj(p.doc['spec']);
    return Object.keys(obj(spec['podSelector'])).length === 0 && arr(spec['policyTypes']).includes('Ingress') && arr(spec['ingress']).length === 0;
  });
  if (!defaultDeny) problems.push('no default-deny ingress NetworkPolicy (podSelector {}, policyTypes [Ingress], no rules)');
  const guarded: { name: string; peers: Obj[] }[] = [
    { name: 'agency-node', peers: [HUB_POD] },
    ...['kurrentdb', 'redis-cluster', 'kafka'].map((name) => ({
      name,
      peers: [HUB_POD, { 'app.kubernetes.io/name': name }, { 'app.kubernetes.io/name': `${name}-init` }, { 'app.kubernetes.io/name': name.replace(/-cluster$/, '') + '-init' }],
    })),
  ];
  for (const g of guarded) {
    const pods = workloads(manifests).filter((w) => w.labels['app.kubernetes.io/name'] === g.name);
    if (pods.length === 0) {
      problems.push(`no ${g.name} workload to guard`);
      continue;
    }
    let admitted = false;
    for (const p of policies) {
      const selector = obj(obj(obj(p.doc['spec'])['podSelector'])['matchLabels']);
      const expressions = arr(obj(obj(p.doc['spec'])['podSelector'])['matchExpressions']);
      if (expressions.length > 0 && pods.some((w) => matches(selector, w.labels))) {
        problems.push(`${label(p)}: matchExpressions on a policy selecting ${g.name} pods cannot be checked`);
        continue;
      }
      if (!pods.some((w) => matches(selector, w.labels))) continue;
      for (const rule of arr(obj(p.doc['spec'])['ingress']).map(obj)) {
        const from = arr(rule['from']).map(obj);
        if (from.length === 0) problems.push(`${label(p)}: admits every source to ${g.name} pods`);
        for (const peer of from) {
          const keys = Object.keys(peer);
          const podLabels = obj(obj(peer['podSelector'])['matchLabels']);
          const known = keys.length === 1 && keys[0] === 'podSelector' && arr(obj(peer['podSelector'])['matchExpressions']).length === 0 && g.peers.some((allowed) => JSON.stringify(podLabels) === JSON.stringify(allowed));
          if (!known) problems.push(`${label(p)}: admits ${JSON.stringify(peer)} to ${g.name} pods; only ${g.name === 'agency-node' ? 'hub pods' : 'hub pods and its own peers'} may reach them`);
          else if (JSON.stringify(podLabels) === JSON.stringify(HUB_POD)) admitted = true;
        }
      }
    }
    if (!admitted) problems.push(`no NetworkPolicy admits hub pods to ${g.name} pods`);
  }
  return problems;
}

/**
 * Every field name any Kubernetes schema of kubernetes-models knows. Its validators accept unknown fields
 * (kubectl's strict field validation refuses them), so a misspelt field (readOnlyRootFileSystem) would pass
 * the schema and be ignored: fieldProblems finds it.
 */
export function knownFields(): Set<string> {
  const keys = new Set<string>();
  // The API groups' schemas, and ObjectMeta, LabelSelector and the like of apimachinery.
  for (const dir of ['node_modules/kubernetes-models/_schemas', 'node_modules/@kubernetes-models/apimachinery/_schemas']) {
    for (const file of readdirSync(join(ROOT, dir)).filter((f) => f.endsWith('.js'))) {
      const source = readFileSync(join(ROOT, dir, file), 'utf8');
      for (const m of source.matchAll(/\bdata\.([A-Za-z_$][\w$]*)/g)) keys.add(m[1]!);
      for (const m of source.matchAll(/\bdata\["([^"]+)"\]/g)) keys.add(m[1]!);
    }
  }
  return keys;
}

/** Maps whose keys are the user's own (labels, data, selectors, resource names), not schema fields. */
const FREE_FORM = new Set(['labels', 'annotations', 'data', 'stringData', 'binaryData', 'matchLabels', 'nodeSelector', 'requests', 'limits']);

export function fieldProblems(manifests: readonly Manifest[], known: ReadonlySet<string> = knownFields()): string[] {
  const problems: string[] = [];
  const walk = (value: unknown, path: string, m: Manifest, parentKey: string): void => {
    if (Array.isArray(value)) value.forEach((v, i) => walk(v, `${path}/${i}`, m, parentKey));
    else if (typeof value === 'object' && value !== null) {
      const freeForm = FREE_FORM.has(parentKey) || (parentKey === 'selector' && m.doc['kind'] === 'Service');
      for (const [key, v] of Object.entries(value)) {
        if (!freeForm && !known.has(key)) problems.push(`${label(m)}: unknown field ${path}/${key}`);
        if (!freeForm) walk(v, `${path}/${key}`, m, key);
      }
    }
  };
  for (const m of manifests) walk(m.doc, '', m, '');
  return problems;
}

// ---------------------------------------------------------------- the hubs' router (HAProxy)

/** haproxy.cfg as sections: `backend hub_leader` → its lines, trimmed, comments dropped. */
export function haproxySections(text: string): Map<string, string[]> {
  const sections = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trimEnd();
    if (line.trim() === '') continue;
    if (/^\S/.test(line)) sections.set(line.trim(), (current = []));
    else current?.push(line.trim());
  }
  return sections;
}

/**
 * What is wrong with the router in front of the hubs, which serve TLS and admit agencies by the client
 * certificate of the TLS handshake (docs/tls.md): the router must pass TLS through untouched (TCP mode, no
 * `ssl`/`crt` on a bind or server line, so it never holds a hub's key nor ends a client's handshake), send
 * HTTPS (8080) and gRPC (9090) only to the hub whose GET /health/ready says "role":"leader", check that over
 * TLS verified against the CA file (`check-ssl verify required ca-file`) and each hub's own name
 * (`check-sni`, `verifyhost`), name exactly the hubs, and answer its own health on /router/health.
 * `hubs` are host:port; the host is the name the hub's certificate must hold.
 */
export function routerProblems(text: string, hubs: { https: readonly string[]; grpc: readonly string[] }, caFile: string): string[] {
  const problems: string[] = [];
  const s = haproxySections(text);
  const defaults = s.get('defaults') ?? [];
  const defaultMode = defaults.find((l) => l.startsWith('mode '));
  const defaultServer = defaults.find((l) => l.startsWith('default-server ')) ?? '';
  for (const [name, lines] of s) {
    if (!/^(frontend|backend|listen) /.test(name)) continue;
    const mode = lines.find((l) => l.startsWith('mode ')) ?? defaultMode;
    for (const l of lines) {
      if (/^bind\b/.test(l) && /\s(ssl|crt)\b/.test(l)) problems.push(`${name} ends TLS (${l}): the router must pass it through`);
      if (/^server\b/.test(l) && /\sssl\b/.test(l)) problems.push(`${name} opens its own TLS to a hub (${l}): the router must pass the client's through`);
    }
    if (name === 'frontend router_health') {
      if (!lines.includes('monitor-uri /router/health')) problems.push('frontend router_health does not answer /router/health');
      continue;
    }
    if (mode !== 'mode tcp') problems.push(`${name} is not in mode tcp: TLS must pass through the router`);
  }
  if (!s.has('frontend router_health')) problems.push('no frontend router_health: the router answers no probe of its own');
  for (const [frontend, port, backend] of [['hub_https', 8080, 'hub_https_leader'], ['hub_grpc', 9090, 'hub_grpc_leader']] as const) {
    const lines = s.get(`frontend ${frontend}`) ?? [];
    if (!lines.includes(`bind :${port}`)) problems.push(`frontend ${frontend} does not bind :${port}`);
    if (lines.find((l) => l.startsWith('default_backend')) !== `default_backend ${backend}` || lines.some((l) => l.startsWith('use_backend'))) problems.push(`frontend ${frontend} does not go to ${backend} only`);
  }
  for (const [backend, targets] of [
    ['hub_https_leader', hubs.https],
    ['hub_grpc_leader', hubs.grpc],
  ] as const) {
    const lines = s.get(`backend ${backend}`) ?? [];
    if (!lines.includes('option httpchk GET /health/ready')) problems.push(`backend ${backend} does not check GET /health/ready`);
    if (!lines.includes(`http-check expect string '"role":"leader"'`)) problems.push(`backend ${backend} does not expect string '"role":"leader"'`);
    const servers = lines.filter((l) => l.startsWith('server '));
    const named = servers.map((l) => l.split(/\s+/)[2]!);
    if (JSON.stringify([...named].sort()) !== JSON.stringify([...targets].sort())) problems.push(`backend ${backend} names ${named.join(', ')} instead of ${targets.join(', ')}`);
    for (const l of servers) {
      const words = l.split(/\s+/);
      const host = words[2]!.replace(/:\d+$/, '');
      const has = (word: string, value?: string): boolean => {
        const i = words.indexOf(word);
        if (i >= 0) return value === undefined || words[i + 1] === value;
        const d = defaultServer.split(/\s+/);
        const j = d.indexOf(word);
        return j >= 0 && (value === undefined || d[j + 1] === value);
      };
      if (!words.includes('check')) problems.push(`backend ${backend} has a server without check`);
      if (!has('check-ssl') || !has('verify', 'required') || !has('ca-file', caFile)) problems.push(`backend ${backend} server ${words[1]}: its check is not HTTPS verified against ${caFile} (check-ssl verify required ca-file)`);
      if (!has('check-sni', host) || !has('verifyhost', host)) problems.push(`backend ${backend} server ${words[1]}: its check does not verify the name ${host} (check-sni, verifyhost)`);
    }
  }
  return problems;
}
