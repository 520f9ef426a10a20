import { describe, expect, it } from 'vitest';
import { RelayDeduplicator } from '#relay';

describe('RelayDeduplicator', () => {
  it('hands on increasing positions per partition and drops any position at or below the last one handed on', () => {
    const d = new RelayDeduplicator();
    expect(d.isNew(0, 5, 'e5')).toBe(true);
    d.handed(0, 5, 'e5');
    expect(d.isNew(0, 5, 'e5')).toBe(false);
    expect(d.isNew(0, 3, 'e3')).toBe(false);
    expect(d.isNew(1, 3, 'e3')).toBe(true); // partitions are independent
    expect(d.isNew(0, 9, 'e9')).toBe(true);
  });

  it('does not count an event as handed on until the handler succeeded', () => {
    const d = new RelayDeduplicator();
    expect(d.isNew(0, 1, 'e1')).toBe(true);
    expect(d.isNew(0, 1, 'e1')).toBe(true); // the handler failed: Kafka delivers it again, and it goes through
  });

  it('refuses a different event at a position already handed on', () => {
    const d = new RelayDeduplicator();
    d.handed(2, 7, 'e7');
    expect(() => d.isNew(2, 7, 'other')).toThrow(expect.objectContaining({ code: 'INVALID_MESSAGE' }));
  });

  it('resumes from a snapshot', () => {
    const d = new RelayDeduplicator();
    d.handed(0, 4, 'e4');
    d.handed(3, 8, 'e8');
    const next = new RelayDeduplicator(JSON.parse(JSON.stringify(d.snapshot())));
    expect(next.isNew(0, 4, 'e4')).toBe(false);
    expect(next.isNew(3, 8, 'e8')).toBe(false);
    expect(next.isNew(3, 9, 'e9')).toBe(true);
  });
});
