import { describe, expect, it } from 'vitest';
import { loadHubConfig } from '../src/config/hub-config.js';

describe('HUB_KAFKA_BROKERS and HUB_KAFKA_TOPIC', () => {
  it('leave the relay off when HUB_KAFKA_BROKERS is unset or empty', () => {
    expect(loadHubConfig({}).kafka).toBeUndefined();
    expect(loadHubConfig({ HUB_KAFKA_BROKERS: '' }).kafka).toBeUndefined();
  });

  it('read comma-separated host:port servers, spaces allowed, and the default topic', () => {
    expect(loadHubConfig({ HUB_KAFKA_BROKERS: 'kafka-1:9092, kafka-2.example:9093,[::1]:9094' }).kafka).toEqual({
      brokers: ['kafka-1:9092', 'kafka-2.example:9093', '[::1]:9094'],
      topic: 'linkage-ledger.events',
    });
    expect(loadHubConfig({ HUB_KAFKA_BROKERS: 'k:9092', HUB_KAFKA_TOPIC: 'hub_01.events' }).kafka?.topic).toBe('hub_01.events');
  });

  it.each([
    ['HUB_KAFKA_BROKERS', 'kafka-1'],
    ['HUB_KAFKA_BROKERS', ':9092'],
    ['HUB_KAFKA_BROKERS', 'a:9092,,b:9092'],
    ['HUB_KAFKA_BROKERS', 'kafka://a:9092'],
    ['HUB_KAFKA_TOPIC', 'a/b'],
    ['HUB_KAFKA_TOPIC', '..'],
    ['HUB_KAFKA_TOPIC', 'x'.repeat(250)],
  ])('refuse %s=%j', (variable, value) => {
    expect(() => loadHubConfig({ HUB_KAFKA_BROKERS: 'k:9092', [variable]: value })).toThrow(
      expect.objectContaining({ code: 'INVALID_CONFIGURATION', problems: [expect.objectContaining({ variable })] }),
    );
  });
});
