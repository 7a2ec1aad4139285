import { runScript } from './helpers/process';
import { createServiceEnv, type ServiceEnv } from './helpers/service-env';

/** The packages a service process has loaded once started on `env`. */
async function loadedPackages(env: Record<string, string>): Promise<string[]> {
  const run = await runScript('test/helpers/loaded-packages.ts', [], { ...env, PORT: '0' });
  if (run.code !== 0) throw new Error(`exit ${run.code ?? run.signal}: ${run.stderr}`);
  return JSON.parse(run.stdout) as string[];
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
