import { watchRate } from '../../src/http/rate';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('watchRate', () => {
  test('a transfer past 1 GiB has earned more than a timer can wait: it is checked again later, not every millisecond', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    let checks = 0;
    const behind = jest.fn();
    // 2 GB at 500 B/s earns 4,000,000 s, past setTimeout's longest delay (2^31 - 1 ms, about 24.8 days).
    const stop = watchRate({ graceMs: 20, bytesPerSecond: 500 }, () => (checks++, 2e9), behind);
    try {
      await sleep(200);
      expect(warnings.filter((w) => w.name === 'TimeoutOverflowWarning')).toEqual([]);
      expect(checks).toBe(1);
      expect(behind).not.toHaveBeenCalled();
    } finally {
      stop();
      process.off('warning', onWarning);
    }
  });

  test('behind is called once the time earned is spent; a transfer that is not the client\'s to blame gets a new grace', async () => {
    const calls: number[] = [];
    let bytes = 0;
    let blameClient = false;
    const started = Date.now();
    // 50 ms of grace, and 1,000 B/s: 100 bytes earn 100 ms more.
    const stop = watchRate({ graceMs: 50, bytesPerSecond: 1_000 }, () => bytes, () => {
      calls.push(Date.now() - started);
      return blameClient ? undefined : false;
    });
    try {
      bytes = 100;
      await sleep(400);
      // Declined each time (the store was slow): asked again a grace later, not given up on.
      expect(calls.length).toBeGreaterThanOrEqual(2);
      expect(calls[0]).toBeGreaterThanOrEqual(145);
      blameClient = true;
      const declined = calls.length;
      await sleep(200);
      // Acted on once: no further calls.
      expect(calls.length).toBe(declined + 1);
      await sleep(200);
      expect(calls.length).toBe(declined + 1);
    } finally {
      stop();
    }
  });
});
