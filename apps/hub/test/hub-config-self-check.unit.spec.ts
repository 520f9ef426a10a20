import { describe, expect, it } from 'vitest';
import { loadHubConfig } from '../src/config/hub-config.js';

describe('HUB_SELF_CHECK and HUB_SELF_CHECK_FULL_MAX_EVENTS', () => {
  it('check at start by default, re-hashing logs of up to 2,000,000 events whole', () => {
    expect(loadHubConfig({}).selfCheck).toEqual({ atStart: true, fullMaxEvents: 2_000_000 });
  });

  it('read the switch and the threshold', () => {
    expect(loadHubConfig({ HUB_SELF_CHECK: 'off', HUB_SELF_CHECK_FULL_MAX_EVENTS: '0' }).selfCheck).toEqual({ atStart: false, fullMaxEvents: 0 });
    expect(loadHubConfig({ HUB_SELF_CHECK: 'on', HUB_SELF_CHECK_FULL_MAX_EVENTS: '50000000' }).selfCheck).toEqual({ atStart: true, fullMaxEvents: 50_000_000 });
  });

  it.each([
    ['HUB_SELF_CHECK', 'yes', 'must be on or off, got "yes"'],
    ['HUB_SELF_CHECK_FULL_MAX_EVENTS', '-1', 'must be an integer from 0 to 1000000000000, got "-1"'],
    ['HUB_SELF_CHECK_FULL_MAX_EVENTS', '2e6', 'must be an integer from 0 to 1000000000000, got "2e6"'],
  ])('refuse %s=%j', (variable, value, message) => {
    expect(() => loadHubConfig({ [variable]: value })).toThrow(expect.objectContaining({ code: 'INVALID_CONFIGURATION', problems: [{ variable, message }] }));
  });
});
