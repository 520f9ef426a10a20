import { Counter, Gauge, type Registry } from 'prom-client';
import type { PushDelivery } from './push-delivery.js';

/**
 * The push delivery's metrics on the hub's registry: pushes pending (read from the pushes projection at
 * scrape time), deliveries in flight, and counters of tries that failed and were scheduled again, of
 * deliveries and of abandons since start. No label names a person or an agency.
 */
export function installPushMetrics(registry: Registry, delivery: PushDelivery): void {
  const registers = [registry];
  new Gauge({
    name: 'linkage_ledger_push_pending',
    help: 'Pushes issued and not yet delivered or abandoned (the pending rows of the pushes projection).',
    registers,
    async collect() {
      try {
        this.set(await delivery.pending());
      } catch {
        this.set(Number.NaN);
      }
    },
  });
  new Gauge({
    name: 'linkage_ledger_push_in_flight',
    help: 'Push deliveries under way now (at most HUB_PUSH_CONCURRENCY).',
    registers,
    collect() {
      this.set(delivery.stats.inFlight);
    },
  });
  const outcomes = new Counter({
    name: 'linkage_ledger_push_tries_total',
    help: 'Push delivery tries since start, by outcome: delivered (PushDelivered), retry (failed, scheduled again), abandoned (PushAbandoned at the deadline).',
    labelNames: ['outcome'] as const,
    registers,
  });
  for (const outcome of ['delivered', 'retry', 'abandoned'] as const) outcomes.labels(outcome).inc(0);
  delivery.onOutcome((outcome) => outcomes.labels(outcome).inc());
}
