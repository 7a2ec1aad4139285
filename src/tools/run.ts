import { AppError, explain } from '../errors';
import { HelpRequested, ToolError } from './context';

/** Where a tool writes its report: lines on stdout, and whether that is a terminal (for a progress bar). */
export interface Output {
  readonly isTTY: boolean;
  readonly stream: NodeJS.WritableStream;
  line(text: string): void;
}

export const stdout: Output = {
  isTTY: Boolean(process.stdout.isTTY),
  stream: process.stdout,
  line: (text) => process.stdout.write(`${text}\n`),
};

/**
 * Runs a tool's main with stdout as its output. Ctrl-C (or SIGTERM) aborts its signal, so it stops between files and
 * still prints its summary; a second Ctrl-C exits at once. Exit codes: main's, 2 for a usage or configuration error.
 */
export function runTool(main: (argv: string[], out: Output, signal: AbortSignal) => Promise<number>): void {
  const stop = new AbortController();
  const onSignal = () => {
    if (stop.signal.aborted) process.exit(130);
    process.stderr.write('stopping after the files under way (Ctrl-C again to quit at once)\n');
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  main(process.argv.slice(2), stdout, stop.signal).then(
    (code) => process.exit(code),
    (err) => {
      if (err instanceof HelpRequested) {
        process.stdout.write(err.usage);
        process.exit(0);
      }
      const usage = err instanceof ToolError || isArgumentError(err);
      process.stderr.write(`${usage || err instanceof AppError ? explain(err) : (err as Error)?.stack ?? err}\n`);
      process.exit(usage ? 2 : 1);
    },
  );
}

/** What node:util's parseArgs throws for an unknown option, a missing value, a stray argument. */
function isArgumentError(err: unknown): boolean {
  return String((err as { code?: unknown })?.code).startsWith('ERR_PARSE_ARGS_');
}
