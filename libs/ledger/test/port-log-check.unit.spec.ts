import { describe, expect, it } from 'vitest';
import { checkLogThroughPort } from '#ledger/tree/port-log-check';

// The reduced self-check of a log read through the port, resumed from a verified mark: it reads only the
// texts from the mark on and ends with the same frontier as a run from position 0.
const texts = Array.from({ length: 100 }, (_, i) => JSON.stringify({ position: i, type: 'Noted', data: { i } }));
const publicKey = new Uint8Array(32);

function reader() {
  const read: number[] = [];
  return {
    read,
    texts: async (from: number, count: number) => {
      for (let p = from; p < Math.min(texts.length, from + count); p++) read.push(p);
      return texts.slice(from, from + count);
    },
  };
}

describe('checkLogThroughPort from a verified mark', () => {
  it('reads only [mark, head) and ends with the frontier of a whole run', async () => {
    const whole = reader();
    const full = await checkLogThroughPort({ texts: whole.texts, head: 100, publicKey, pageSize: 16 });
    expect(whole.read).toHaveLength(100);
    const atMark = reader();
    const mark = await checkLogThroughPort({ texts: atMark.texts, head: 60, publicKey, pageSize: 16 });
    const resumed = reader();
    const rest = await checkLogThroughPort({ texts: resumed.texts, head: 100, publicKey, pageSize: 16, resume: { size: 60, frontier: mark.frontier } });
    expect(resumed.read).toEqual(Array.from({ length: 40 }, (_, i) => 60 + i));
    expect(rest).toMatchObject({ from: 60, to: 100, checked: 40, treeSize: 100, findingCount: 0 });
    expect(Buffer.from(rest.frontier).equals(Buffer.from(full.frontier))).toBe(true);
  });

  it('refuses a frontier that is not of the size it claims', async () => {
    const mark = await checkLogThroughPort({ texts: reader().texts, head: 10, publicKey });
    await expect(checkLogThroughPort({ texts: reader().texts, head: 20, publicKey, resume: { size: 11, frontier: mark.frontier } })).rejects.toMatchObject({ code: 'TREE_NOT_KEPT' });
  });
});
