import { spawn } from 'node:child_process';
import path from 'node:path';
import { createServiceEnv, type ServiceEnv } from './helpers/service-env';

/** The packages a service process has loaded once started on `env`; the process is killed if it takes 50 s. */
function loadedPackages(env: Record<string, string>): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'helpers/loaded-packages.ts')], {
      env: { PATH: process.env.PATH ?? '', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env, PORT: '0' },
      timeout: 50_000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    // 'close', not 'exit': only then has all of stdout been read.
    child.on('close', (code, signal) => {
      if (code !== 0) return reject(new Error(`exit ${code ?? signal}: ${stderr}`));
      try {
        resolve(JSON.parse(stdout) as string[]);
      } catch (err) {
        reject(err);
      }
    });
  });
}

// An idle service on local disk and Postgres took 85 MB of RSS with the AWS SDK and PGlite loaded, 74 MB without
// them (PGlite's share is 1-2 MB): a store or database that is not configured costs nothing.
describe('what a service loads', () => {
  const envs: ServiceEnv[] = [];
  afterAll(async () => {
    for (const env of envs) await env.close();
  });

  test('on local disk, not the AWS SDK; on Postgres, not PGlite', async () => {
    const env = await createServiceEnv('local');
    envs.push(env);
    const loaded = await loadedPackages(env.env);
    expect(loaded).toContain('express');
    expect(loaded.filter((p) => p.startsWith('@aws-sdk/') || p.startsWith('@smithy/'))).toEqual([]);
    // Without DATABASE_URL the service runs on PGlite, which it then needs.
    expect(loaded.includes('@electric-sql/pglite')).toBe(!process.env.DATABASE_URL);
  }, 60_000);

  test('with S3 configured, the AWS SDK and lib-storage', async () => {
    const env = await createServiceEnv('s3');
    envs.push(env);
    const loaded = await loadedPackages(env.env);
    expect(loaded).toEqual(expect.arrayContaining(['@aws-sdk/client-s3', '@aws-sdk/lib-storage']));
  }, 60_000);
});
