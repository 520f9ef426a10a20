import { describe, expect, it } from 'vitest';
import { describeStages, parseStageTotals, stageMeans } from '../../load-tests/runner/hub-stages.js';

/** A scrape as the hub answers it: the query route's HTTP histogram (two status classes), another route, the steps. */
function exposition(queries: { sum: number; count: number }, errors: { sum: number; count: number }, steps: Record<string, [number, number]>): string {
  const lines = [
    '# HELP linkage_http_request_duration_seconds HTTP requests',
    '# TYPE linkage_http_request_duration_seconds histogram',
    `linkage_http_request_duration_seconds_bucket{le="0.1",route="/v1/queries",method="POST",status_class="2xx"} ${queries.count}`,
    `linkage_http_request_duration_seconds_sum{route="/v1/queries",method="POST",status_class="2xx"} ${queries.sum}`,
    `linkage_http_request_duration_seconds_count{route="/v1/queries",method="POST",status_class="2xx"} ${queries.count}`,
    `linkage_http_request_duration_seconds_sum{route="/v1/queries",method="POST",status_class="4xx"} ${errors.sum}`,
    `linkage_http_request_duration_seconds_count{route="/v1/queries",method="POST",status_class="4xx"} ${errors.count}`,
    'linkage_http_request_duration_seconds_sum{route="/health/ready",method="GET",status_class="2xx"} 9',
    'linkage_http_request_duration_seconds_count{route="/health/ready",method="GET",status_class="2xx"} 900',
  ];
  for (const [stage, [sum, count]] of Object.entries(steps)) {
    lines.push(`linkage_query_stage_seconds_bucket{le="0.01",stage="${stage}"} ${count}`, `linkage_query_stage_seconds_sum{stage="${stage}"} ${sum}`, `linkage_query_stage_seconds_count{stage="${stage}"} ${count}`);
  }
  return `${lines.join('\n')}\n`;
}

describe('where a query\'s time goes, from two scrapes of the hub\'s metrics', () => {
  it('reads the query route (every status class) and the steps, and leaves other routes out', () => {
    const totals = parseStageTotals(exposition({ sum: 2, count: 100 }, { sum: 0.5, count: 10 }, { translate: [0.1, 100], record: [0.3, 100], provider: [0.8, 90], end: [0.2, 90] }));
    expect(totals.http).toEqual({ sum: 2.5, count: 110 });
    expect(totals.stages.provider).toEqual({ sum: 0.8, count: 90 });
  });

  it('gives each step\'s mean over the phases between the scrapes, the rest of the HTTP time as the pipeline', () => {
    const before = parseStageTotals(exposition({ sum: 1, count: 100 }, { sum: 0, count: 0 }, { translate: [0.1, 100], record: [0.2, 100], provider: [0.5, 100], end: [0.1, 100] }));
    // 1,000 more queries of 50 ms: 4 ms translate, 8 ms record, 20 ms provider, 6 ms end, so 12 ms elsewhere.
    const after = parseStageTotals(exposition({ sum: 51, count: 1100 }, { sum: 0, count: 0 }, { translate: [4.1, 1100], record: [8.2, 1100], provider: [20.5, 1100], end: [6.1, 1100] }));
    const later = parseStageTotals(exposition({ sum: 61, count: 1200 }, { sum: 0, count: 0 }, { translate: [4.5, 1200], record: [9.2, 1200], provider: [24.5, 1200], end: [6.9, 1200] }));
    const one = stageMeans([[before, after]])!;
    expect(one).toEqual({ requests: 1000, httpMs: 50, pipelineMs: 12, stagesMs: { translate: 4, record: 8, provider: 20, end: 6 } });
    expect(describeStages(one)).toBe('HTTP 50.0 ms = pipeline 12.0 + translate 4.0 + record 8.0 + provider 20.0 + end 6.0');
    // Two phases (the rounds), their scrapes apart: weighted by their requests.
    const two = stageMeans([[before, after], [after, later]])!;
    expect(two.requests).toBe(1100);
    expect(two.httpMs).toBeCloseTo(60_000 / 1100, 1);
    expect(two.stagesMs.provider).toBeCloseTo(24_000 / 1100, 1);
  });

  it('has nothing to say about a phase without query requests', () => {
    const same = parseStageTotals(exposition({ sum: 1, count: 100 }, { sum: 0, count: 0 }, {}));
    expect(stageMeans([[same, same]])).toBeUndefined();
    expect(stageMeans([])).toBeUndefined();
  });
});
