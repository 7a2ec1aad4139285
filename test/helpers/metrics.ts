import type { TestApp } from './app';

/** The value of one series in the app's /metrics text (`admission_waiting{gate="s3_upload_bytes"}`), or undefined. */
export async function metric(t: TestApp, series: string): Promise<number | undefined> {
  const line = (await t.request().get('/metrics')).text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}
