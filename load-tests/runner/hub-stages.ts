/**
 * Where a query's time goes inside the hub under load, from the hub's own metrics (GET /metrics): the HTTP
 * histogram of POST /v1/queries and `linkage_query_stage_seconds` (translate, record, provider, end). Scraped
 * before and after a phase, the differences of their sums and counts give each step's mean over that phase;
 * the HTTP time not in any step is the HTTP pipeline (authentication, rate limit, validation, the reply).
 */

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

const LINE = /^(linkage_http_request_duration_seconds|linkage_query_stage_seconds)_(sum|count)\{([^}]*)\} (\S+)$/;

/** Reads the totals out of Prometheus' text exposition format. */
export function parseStageTotals(text: string): StageTotals {
  const http = { sum: 0, count: 0 };
  const stages = Object.fromEntries(HUB_STAGES.map((s) => [s, { sum: 0, count: 0 }])) as Record<HubStage, { sum: number; count: number }>;
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (m === null) continue;
    const labels = Object.fromEntries([...m[3]!.matchAll(/([a-z_]+)="([^"]*)"/g)].map((l) => [l[1]!, l[2]!]));
    const field = m[2] as 'sum' | 'count';
    const value = Number(m[4]);
    if (m[1] === 'linkage_http_request_duration_seconds') {
      if (labels['route'] === '/v1/queries' && labels['method'] === 'POST') http[field] += value;
    } else if ((HUB_STAGES as readonly string[]).includes(labels['stage'] ?? '')) {
      stages[labels['stage'] as HubStage][field] += value;
    }
  }
  return { http, stages };
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
