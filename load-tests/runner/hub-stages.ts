/**
 * Where a query's time goes inside the hub under load, from the hub's own metrics (GET /metrics): the HTTP
 * histogram of POST /v1/queries and `linkage_query_stage_seconds` (translate, record, provider, end). Scraped
 * before and after a phase, the differences of their sums and counts give each step's mean over that phase;
 * the HTTP time not in any step is the HTTP pipeline (authentication, rate limit, validation, the reply).
 */

import { parseExposition, sampleSum } from '#metrics';

/** The steps the hub times, in the order a query takes them. */
export const HUB_STAGES = ['translate', 'record', 'provider', 'end'] as const;
export type HubStage = (typeof HUB_STAGES)[number];

/** Sums (seconds) and counts of the histograms read, as one scrape holds them. */
export interface StageTotals {
  readonly http: { readonly sum: number; readonly count: number };
  readonly stages: Readonly<Record<HubStage, { readonly sum: number; readonly count: number }>>;
}

/** Mean milliseconds per query request over a phase: the HTTP request, its steps, and the rest (the pipeline). */
export interface StageMeans {
  readonly requests: number;
  readonly httpMs: number;
  readonly pipelineMs: number;
  readonly stagesMs: Readonly<Record<HubStage, number>>;
}

/** Reads the totals out of Prometheus' text exposition format. */
export function parseStageTotals(text: string): StageTotals {
  const samples = parseExposition(text);
  const query = { route: '/v1/queries', method: 'POST' };
  const total = (name: string, labels: Readonly<Record<string, string>>) => ({ sum: sampleSum(samples, `${name}_sum`, labels), count: sampleSum(samples, `${name}_count`, labels) });
  return {
    http: total('linkage_http_request_duration_seconds', query),
    stages: Object.fromEntries(HUB_STAGES.map((stage) => [stage, total('linkage_query_stage_seconds', { stage })])) as Record<HubStage, { sum: number; count: number }>,
  };
}

/** One scrape of the hub's metrics; undefined when the hub does not answer them (the line is then left out). */
export async function scrapeStageTotals(hubUrl: string, web: typeof fetch): Promise<StageTotals | undefined> {
  try {
    const res = await web(`${hubUrl}/metrics`);
    if (res.status !== 200) return undefined;
    return parseStageTotals(await res.text());
  } catch {
    return undefined;
  }
}

/** The means between two scrapes (over several phases: the sum of their differences, `pairs`); undefined without requests. */
export function stageMeans(pairs: readonly (readonly [StageTotals, StageTotals])[]): StageMeans | undefined {
  const delta = (pick: (t: StageTotals) => { sum: number; count: number }) =>
    pairs.reduce((d, [a, b]) => ({ sum: d.sum + pick(b).sum - pick(a).sum, count: d.count + pick(b).count - pick(a).count }), { sum: 0, count: 0 });
  const http = delta((t) => t.http);
  if (http.count <= 0) return undefined;
  const ms = (d: { sum: number; count: number }) => (d.count > 0 ? (1000 * d.sum) / d.count : 0);
  const stagesMs = Object.fromEntries(HUB_STAGES.map((s) => [s, round(ms(delta((t) => t.stages[s])))])) as Record<HubStage, number>;
  const httpMs = ms(http);
  const inStages = HUB_STAGES.reduce((n, s) => n + stagesMs[s], 0);
  return { requests: http.count, httpMs: round(httpMs), pipelineMs: round(Math.max(0, httpMs - inStages)), stagesMs };
}

/** "HTTP 49.1 ms = pipeline 12.9 + translate 4.0 + record 8.2 + provider 18.0 + end 6.4". */
export function describeStages(means: StageMeans): string {
  return `HTTP ${means.httpMs.toFixed(1)} ms = pipeline ${means.pipelineMs.toFixed(1)} + ${HUB_STAGES.map((s) => `${s} ${means.stagesMs[s].toFixed(1)}`).join(' + ')}`;
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
