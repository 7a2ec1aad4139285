import bytes from 'bytes';
import { SingleBar } from 'cli-progress';
import type { Output } from './run';

/**
 * A long run's progress: a bar of files, bytes, rate and ETA on a terminal; elsewhere (a log, a CI job) a line every
 * `logEvery` files, since a bar's redraws would fill the log.
 */
export class Progress {
  private readonly bar?: SingleBar;
  private readonly started = Date.now();
  private done = 0;

  constructor(
    private readonly out: Output,
    private readonly files: number,
    private readonly totalBytes: number,
    private readonly logEvery: number,
  ) {
    if (out.isTTY) {
      this.bar = new SingleBar({ format: '{bar} {value}/{total} files | {moved} | {rate}/s | ETA {eta_formatted}', hideCursor: true, stream: out.stream });
      this.bar.start(files, 0, { moved: bytes.format(0), rate: this.rate(0) });
    }
  }

  /** Bytes per second so far, formatted. */
  rate(bytesDone: number): string {
    return `${bytes.format(bytesDone / Math.max(1, (Date.now() - this.started) / 1000))}`;
  }

  seconds(): string {
    return ((Date.now() - this.started) / 1000).toFixed(1);
  }

  /** One more file done, `bytesDone` in all. */
  tick(bytesDone: number): void {
    this.done++;
    this.bar?.update(this.done, { moved: bytes.format(bytesDone), rate: this.rate(bytesDone) });
    if (!this.bar && this.done % this.logEvery === 0) {
      this.out.line(`${this.done}/${this.files} files, ${bytes.format(bytesDone)} of ${bytes.format(this.totalBytes)} moved, ${this.rate(bytesDone)}/s`);
    }
  }

  /** A line about one file: as it happens without a terminal; on one, left for the summary (lines would tear the bar). */
  report(line: string): void {
    if (!this.bar) this.out.line(line);
  }

  stop(): void {
    this.bar?.stop();
  }
}
