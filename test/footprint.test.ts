import { spawn } from 'node:child_process';
import path from 'node:path';
import { createServiceEnv, type ServiceEnv } from './helpers/service-env';
import { freePort } from './helpers/process';

/** The packages a service process has loaded once started on `env`. */
function loadedPackages(env: Record<string, string>, port: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'helpers/loaded-packages.ts')], {
      env: { PATH: process.env.PATH ?? '', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env, PORT: String(port) },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(stdout) as string[]) : reject(new Error(`exit ${code}: ${stderr}`))));
  });
}

// An idle service on local disk took 85 MB of RSS with the AWS SDK loaded and 74 MB without it: a store that is
// not configured costs nothing.
describe('what a service loads', () => {
  const envs: ServiceEnv[] = [];
  afterAll(async () => {
    for (const env of envs) await env.close();
  });

  test('on local disk, not the AWS SDK; on Postgres, not PGlite', async () => {
    const env = await createServiceEnv('local');
    envs.push(env);
    const loaded = await loadedPackages(env.env, await freePort());
    expect(loaded).toContain('express');
    expect(loaded.filter((p) => p.startsWith('@aws-sdk/') || p.startsWith('@smithy/'))).toEqual([]);
    // Without DATABASE_URL the service runs on PGlite, which it then needs.
    expect(loaded.includes('@electric-sql/pglite')).toBe(!process.env.DATABASE_URL);
  }, 60_000);

  test('with S3 configured, the AWS SDK and lib-storage', async () => {
    const env = await createServiceEnv('s3');
    envs.push(env);
    const loaded = await loadedPackages(env.env, await freePort());
    expect(loaded).toEqual(expect.arrayContaining(['@aws-sdk/client-s3', '@aws-sdk/lib-storage']));
  }, 60_000);
});
