import { describe, expect, it } from 'vitest';
import { cryptoBudget, describeBudget, measureLinkageCrypto, type LinkageCrypto } from '../../load-tests/runner/crypto-budget.js';

const crypto = (total: number): LinkageCrypto => ({ hub: { seal: total / 2, sign: total / 4, digest: 0, total: (3 * total) / 4 }, node: { verify: total / 8, sealAnswer: total / 8, total: total / 4 }, total });

describe("the throughput bar's CPU budget (load:linkage)", () => {
  it('times each piece of a linkage\'s cryptography with the hub\'s and the intermediate server\'s own functions', async () => {
    const c = await measureLinkageCrypto(50, 10);
    for (const v of [c.hub.seal, c.hub.sign, c.hub.digest, c.node.verify, c.node.sealAnswer]) expect(v).toBeGreaterThan(0);
    expect(c.hub.total).toBeCloseTo(c.hub.seal + c.hub.sign + c.hub.digest, 3);
    expect(c.node.total).toBeCloseTo(c.node.verify + c.node.sealAnswer, 3);
    expect(c.total).toBeCloseTo(c.hub.total + c.node.total, 3);
  });

  it('gives a linkage cores / (0.4 × baseline) of CPU and bounds the ratio by the relay\'s cost plus the cryptography', () => {
    // 2 cores, a baseline of 10,000/s: the bar (4,000/s) leaves 0.5 ms per linkage.
    const over = cryptoBudget(2, 10_000, 0.1, crypto(0.5));
    expect(over).toMatchObject({ cores: 2, budgetMs: 0.5, relayMs: 0.1, floorMs: 0.6, floorRatio: 0.333 });
    expect(describeBudget(over, 10_000)).toMatch(/0\.500 ms of CPU .* 0\.600 ms, already over the budget .*\(floor ratio 0\.333\)/);
    const under = cryptoBudget(2, 10_000, 0.1, crypto(0.2));
    expect(under).toMatchObject({ floorMs: 0.3, floorRatio: 0.667 });
    expect(describeBudget(under, 10_000)).toMatch(/0\.200 ms left for everything else \(floor ratio 0\.667\)/);
  });
});
