// The bench's table: one row per figure, printed as the bench goes and written as Markdown for README.
import { MB } from './lib';

export interface Row {
  figure: string;
  value: number;
  unit: string;
  /** value / reference, when there is one */
  ratio?: number;
  reference?: string;
  goal?: string;
  /** The figures behind the value, when it summarises several; for a throughput, its slowest and fastest run. */
  note?: string;
}

export const mbps = (size: number, seconds: number) => size / MB / seconds;

/**
 * The slowest and fastest of a contender's timed runs, in MB/s. This machine has spells, seconds to minutes long,
 * in which the kernel's share of every process's work grows two- to threefold (seen with the ceiling run alone):
 * a median of a few 1 GB runs can land in one.
 */
export function spread(size: number, runs: readonly number[]): string {
  const rates = runs.map((seconds) => mbps(size, seconds));
  return `runs ${Math.min(...rates).toFixed(0)}–${Math.max(...rates).toFixed(0)} MB/s`;
}

/** The ratio and the note, as both the console line and the Markdown table show them. */
function detailOf(row: Row): string {
  const ratio = row.ratio === undefined ? '' : `${(row.ratio * 100).toFixed(0)}% of ${row.reference}`;
  return ratio && row.note ? `${ratio} (${row.note})` : ratio || row.note || '';
}

const integral = (row: Row) => row.unit === 'MB/s' || row.unit === 'req/s';

/** A row as the bench prints it while it runs. */
export function consoleLine(row: Row): string {
  const detail = detailOf(row);
  return `${row.figure.padEnd(58)} ${row.value.toFixed(integral(row) ? 0 : 2).padStart(9)} ${row.unit.padEnd(5)}${detail ? `  ${detail}` : ''}`;
}

/** The rows as a Markdown table, for README's "Performance": pasted, not retyped. */
export function markdownTable(rows: readonly Row[]): string {
  const lines = rows.map((row) => {
    const value = row.value.toFixed(integral(row) || !row.unit ? 0 : 1);
    return `| ${row.figure} | ${value}${row.unit ? ` ${row.unit}` : ''} | ${detailOf(row)} | ${row.goal ?? ''} |`;
  });
  return ['| figure | value | ratio | goal |', '|---|---|---|---|', ...lines, ''].join('\n');
}
