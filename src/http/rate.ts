/** The least a transfer must keep to: time for any transfer at all, and time earned by each byte moved. */
export interface MinimumRate {
  /** How long any transfer may take, whatever its size. */
  readonly graceMs: number;
  /** Each byte moved earns this much more time, on average: 500 B/s is 4 kbit/s, a very poor mobile line. */
  readonly bytesPerSecond: number;
}

/**
 * Apache's mod_reqtimeout default for bodies (body=20,MinRate=500), with more grace for a phone starting an upload.
 * Downloads keep to the same: a client must read at least as fast as the slowest line a customer might have.
 */
export const MINIMUM_RATE: MinimumRate = { graceMs: 30_000, bytesPerSecond: 500 };

// setTimeout's longest delay; a longer one fires after 1 ms, with a warning. At 500 B/s a transfer has earned that
// much once past 1 GiB: such a deadline is checked again when this one comes, not every millisecond.
const MAX_DELAY_MS = 2 ** 31 - 1;

/**
 * Calls `behind` once a transfer falls behind `rate`: when more time has passed since the call than the grace plus
 * the time the bytes moved so far (`progress()`) have earned. An average, not a pace: a pause is fine once the bytes
 * before it earned the time. A server's idle timeout alone is reset by every byte, so without this a client moving
 * a byte a minute would hold its connection, its file and whatever the transfer holds forever. `behind` returns
 * false when the transfer is behind for the server's own reasons (its store slow), not the client's: it is watched
 * again a grace later. Checked only at the deadlines (one timer, never a poll); returns the function that stops.
 */
export function watchRate(
  rate: MinimumRate,
  progress: () => number,
  behind: (bytes: number, ms: number) => boolean | void,
): () => void {
  const started = Date.now();
  let extraMs = 0;
  let timer: NodeJS.Timeout | undefined;
  const check = () => {
    const bytes = progress();
    const now = Date.now();
    const deadline = started + extraMs + rate.graceMs + (bytes / rate.bytesPerSecond) * 1000;
    if (now < deadline) timer = setTimeout(check, Math.min(deadline - now, MAX_DELAY_MS)).unref();
    else if (behind(bytes, now - started) === false) {
      extraMs = now - started - (bytes / rate.bytesPerSecond) * 1000;
      timer = setTimeout(check, rate.graceMs).unref();
    }
  };
  timer = setTimeout(check, rate.graceMs).unref();
  return () => clearTimeout(timer);
}
