import { PassThrough } from 'node:stream';

/** A stream for a logger to write to (createLogger(level, sink)), and the lines written so far. */
export function logLines(): { lines: string[]; sink: PassThrough } {
  const lines: string[] = [];
  const sink = new PassThrough();
  sink.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean)));
  return { lines, sink };
}
