import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { AgencyMetrics } from '../../agency-node/src/metrics/agency-metrics.js';
import { HubMetrics } from '../src/metrics/hub-metrics.js';
import type { PushDelivery } from '../src/pushes/push-delivery.js';
import { installPushMetrics } from '../src/pushes/push-metrics.js';

/**
 * The Grafana dashboard (deploy/grafana/dashboards/linkage-ledger.json) reads only metrics the apps
 * register, with label names they have: a renamed metric or label fails here, not as an empty panel.
 */

const DASHBOARD = join(dirname(fileURLToPath(import.meta.url)), '../../../deploy/grafana/dashboards/linkage-ledger.json');

interface Panel {
  readonly type: string;
  readonly title: string;
  readonly datasource?: { readonly type: string; readonly uid: string };
  readonly targets?: readonly { readonly expr: string; readonly datasource?: { readonly uid: string } }[];
  readonly panels?: readonly Panel[];
}

function panels(list: readonly Panel[]): Panel[] {
  return list.flatMap((p) => [p, ...panels(p.panels ?? [])]);
}

/** Every series name a registry exposes (histograms as _bucket, _sum and _count), with its metric's label names. */
function exposed(registries: readonly Registry[]): Map<string, Set<string>> {
  const names = new Map<string, Set<string>>();
  for (const registry of registries) {
    for (const metric of registry.getMetricsAsArray() as unknown as { name: string; labelNames?: string[]; constructor: { name: string } }[]) {
      const labels = new Set([...(metric.labelNames ?? []), 'job', 'instance']);
      const series = metric.constructor.name === 'Histogram' ? ['_bucket', '_sum', '_count'].map((s) => metric.name + s) : [metric.name];
      for (const s of series) {
        const known = names.get(s) ?? new Set<string>();
        for (const l of labels) known.add(l);
        if (s.endsWith('_bucket')) known.add('le');
        names.set(s, known);
      }
    }
  }
  return names;
}

/** Process metrics whose label names prom-client sets itself (not in labelNames). */
const DEFAULT_LABELS = new Set(['type', 'space', 'version', 'major', 'minor', 'patch', 'kind']);

/** The metric names and the grouping/matching label names a PromQL expression uses. */
function namesIn(expr: string): { metrics: string[]; labels: string[] } {
  const metrics = [...expr.matchAll(/\b(linkage_[a-zA-Z0-9_]+)\b/g)].map((m) => m[1]!);
  const labels = [
    ...[...expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((s) => s.trim())),
    ...[...expr.matchAll(/\{([^}]*)\}/g)].flatMap((m) => [...m[1]!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]!)),
  ].filter((l) => l !== '');
  return { metrics, labels };
}

describe('the Grafana dashboard', () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[]; templating: { list: { name: string; type: string; query: unknown }[] } };
  const all = panels(dashboard.panels);
  const queries = all.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
  const templated = dashboard.templating.list.flatMap((v) => (typeof v.query === 'object' && v.query !== null ? [{ panel: `variable ${v.name}`, expr: String((v.query as { query?: unknown }).query) }] : []));

  /** The hub's registry as installHubMetrics fills it: HubMetrics and the push delivery's metrics (a stand-in delivery). */
  function hubRegistry(): Registry {
    const hub = new HubMetrics();
    const delivery = { pending: async () => 0, stats: { inFlight: 0 }, onOutcome: () => undefined } as unknown as PushDelivery;
    installPushMetrics(hub.registry, delivery);
    return hub.registry;
  }

  it('names only metrics and labels the hub and the intermediate server register', () => {
    const known = exposed([hubRegistry(), new AgencyMetrics().registry]);
    expect(queries.length).toBeGreaterThan(15);
    for (const { panel, expr } of [...queries, ...templated]) {
      const { metrics, labels } = namesIn(expr);
      expect(metrics.length, `${panel}: ${expr} reads no linkage_ metric`).toBeGreaterThan(0);
      for (const m of metrics) {
        expect(known.has(m), `${panel}: ${m} is not registered`).toBe(true);
        for (const l of labels) expect(known.get(m)!.has(l) || DEFAULT_LABELS.has(l), `${panel}: ${m} has no label ${l}`).toBe(true);
      }
    }
  });

  it('shows what the operators watch: rate and latency per route, batches, checkpoint age, tree lag, mapper, rate limiter, relay, providers, a query\'s steps, pushes', () => {
    const text = queries.map((q) => q.expr).join('\n');
    for (const m of [
      'linkage_http_request_duration_seconds_count',
      'linkage_http_request_duration_seconds_bucket',
      'linkage_ledger_batch_events_bucket',
      'linkage_ledger_batch_commit_seconds_bucket',
      'linkage_checkpoint_age_seconds',
      'linkage_tree_lag_events',
      'linkage_mapper_mode',
      'linkage_mapper_fallback_calls_total',
      'linkage_rate_limit_mode',
      'linkage_rate_limit_fallbacks_total',
      'linkage_relay_lag_events',
      'linkage_provider_request_duration_seconds_bucket',
      'linkage_query_stage_seconds_sum',
      'linkage_ledger_open_serials',
      'linkage_ledger_push_pending',
      'linkage_ledger_push_in_flight',
      'linkage_ledger_push_tries_total',
      'linkage_agency_pushes_received_total',
      'linkage_agency_push_fetches_total',
    ]) {
      expect(text, m).toContain(m);
    }
    expect(text).toMatch(/histogram_quantile\(0\.99, sum by \(le, job, route\)/);
    expect(text).toMatch(/histogram_quantile\(0\.5, sum by \(le, job, route\)/);
    expect(text).toMatch(/sum by \(le, agency\)/);
  });

  it('reads every panel from the Prometheus datasource variable (provisioned with uid prometheus)', () => {
    const variable = dashboard.templating.list.find((v) => v.name === 'DS_PROMETHEUS');
    expect(variable).toMatchObject({ type: 'datasource', query: 'prometheus' });
    for (const p of all.filter((p) => p.type !== 'row')) {
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${DS_PROMETHEUS}' });
      for (const t of p.targets ?? []) expect(t.datasource?.uid, p.title).toBe('${DS_PROMETHEUS}');
    }
  });
});
