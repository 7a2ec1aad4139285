import { consoleLine, markdownTable, spread } from '../../bench/table';
import { MB } from '../../bench/lib';

describe('the bench table', () => {
  test('spread: the slowest run first, the fastest last, in MB/s', () => {
    // 64 MB in 0.5, 0.25 and 1 s: 128, 256 and 64 MB/s.
    expect(spread(64 * MB, [0.5, 0.25, 1])).toBe('runs 64–256 MB/s');
  });

  const rows = [
    { figure: 'upload 1 GB, service to local disk', value: 263.4, unit: 'MB/s', ratio: 0.744, reference: 'ceiling', goal: '>= 80% of ceiling', note: 'runs 183–306 MB/s' },
    { figure: 'CPU per 1 GB upload', value: 3150, unit: 'ms', note: 'ceiling / service: 2404 / 3150' },
    { figure: 'small documents: errors', value: 0, unit: '' },
  ];

  test('Markdown: a row per figure, ratio with its note, throughputs whole, other units to a tenth', () => {
    expect(markdownTable(rows).split('\n')).toEqual([
      '| figure | value | ratio | goal |',
      '|---|---|---|---|',
      '| upload 1 GB, service to local disk | 263 MB/s | 74% of ceiling (runs 183–306 MB/s) | >= 80% of ceiling |',
      '| CPU per 1 GB upload | 3150.0 ms | ceiling / service: 2404 / 3150 |  |',
      '| small documents: errors | 0 |  |  |',
      '',
    ]);
  });

  test('console: the same ratio and note after the figure and its value', () => {
    expect(consoleLine(rows[0])).toMatch(/^upload 1 GB, service to local disk +263 MB\/s +74% of ceiling \(runs 183–306 MB\/s\)$/);
    expect(consoleLine(rows[1])).toMatch(/^CPU per 1 GB upload +3150\.00 ms +ceiling \/ service: 2404 \/ 3150$/);
  });
});
