import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { freePort, serviceNodeFlags } from './helpers/process';

/** Starts the service as ops do, expecting it to fail: its exit code and what it wrote to stderr. */
async function failedStart(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [...serviceNodeFlags(), '--import', 'tsx', path.resolve(__dirname, '../src/server.ts')], {
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'development', LOG_LEVEL: 'silent', PORT: '0', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stderr };
}

describe('a service that cannot start says why', () => {
  test('a database that refuses connections: exit 1, and the cause on the line, not only "not available"', async () => {
    const port = await freePort(); // nothing listens there
    const { code, stderr } = await failedStart({ DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/crm` });
    expect(code).toBe(1);
    expect(stderr).toContain(`startup failed: The database is not available; try again shortly: connect ECONNREFUSED 127.0.0.1:${port}`);
  });
});
