import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createPgliteDb } from '../../src/db/pglite';
import { pgliteTemplate } from '../helpers/db';
import { freePort, runScript } from '../helpers/process';
import { createServiceEnv, type ServiceEnv } from '../helpers/service-env';
import { newStoredFileName } from '../../src/documents/file-name';

const tool = (name: string, args: string[], env: Record<string, string>) => runScript(`src/tools/${name}.ts`, args, env);

describe('the tools as ops run them: exit codes', () => {
  let env: ServiceEnv;
  beforeAll(async () => {
    env = await createServiceEnv('s3', {}, { migrated: true });
  });
  afterAll(() => env.close());

  test('0 when there is nothing wrong or nothing to move; 2 with a usage line for a bad argument', async () => {
    const verify = await tool('storage-verify', [], env.env);
    expect(verify.stdout).toMatch(/0 documents checked: 0 with a problem; 0 unclaimed files — storage and database agree/);
    // First, what it read: a report of files no row claims means little against the wrong database.
    expect(verify.stdout.split('\n')[0]).toMatch(/^database (postgres:\/\/\S+@127\.0\.0\.1:\d+\/\w+|the embedded PGlite in \/\S+); UPLOAD_DIR \/\S+, s3:\/\/\S+ at http/);
    expect(verify.code).toBe(0);
    const migrate = await tool('storage-migrate', [], env.env);
    expect(migrate.stdout).toMatch(/^moved 0 files/m);
    expect(migrate.code).toBe(0);
    const bad = await tool('storage-migrate', ['--concurrency', 'lots'], env.env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--concurrency accepts a whole number from 1 to 64');
  }, 60_000);

  test('1 when storage and database disagree; 2 when S3 is not configured for a migration', async () => {
    await fs.mkdir(env.uploadDir, { recursive: true });
    const stray = newStoredFileName('stray.pdf');
    await fs.writeFile(path.join(env.uploadDir, stray), '%PDF-1.4 nobody claims me');
    const verify = await tool('storage-verify', [], env.env);
    expect(verify.stdout).toContain(`UNCLAIMED local:${stray}`);
    expect(verify.code).toBe(1);
    const { AWS_S3_BUCKET_NAME: _bucket, STORAGE_DRIVER: _driver, ...withoutS3 } = env.env;
    for (const args of [[], ['--dry-run']]) {
      const migrate = await tool('storage-migrate', args, withoutS3);
      expect(migrate.code).toBe(2);
      expect(migrate.stderr).toContain('S3 is not configured');
    }
  }, 60_000);

  test('--help: the usage on stdout, 0; an unknown option: 2, one line; no database: 1, with the reason, no stack; a database that refuses: 2', async () => {
    const help = await tool('storage-verify', ['--help'], env.env);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: npm run storage:verify/);
    const typo = await tool('storage-migrate', ['--dryrun'], env.env);
    expect(typo.code).toBe(2);
    expect(typo.stderr.trim()).toBe("Unknown option '--dryrun'");
    const { DATABASE_URL: _url, PGLITE_DATA_DIR: _dir, ...rest } = env.env;
    const away = await tool('storage-verify', [], { ...rest, DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' });
    expect(away.code).toBe(1);
    expect(away.stderr.trim()).toBe('The database is not available; try again shortly: connect ECONNREFUSED 127.0.0.1:1');
    if (process.env.DATABASE_URL) {
      // A database that answers but refuses for good is a configuration error: 2, one line, naming what was read.
      const url = new URL(process.env.DATABASE_URL);
      url.pathname = '/no_such_database';
      const wrong = await tool('storage-verify', [], { ...rest, DATABASE_URL: url.href });
      expect(wrong.code).toBe(2);
      expect(wrong.stderr.trim()).toBe(
        `The database refused this tool (postgres://${url.username}@${url.host}/no_such_database): database "no_such_database" does not exist. Check DATABASE_URL.`,
      );
    }
  }, 60_000);

  test('a database the service has not upgraded (a wrong DATABASE_URL, the CRM before its first start): 2, and its schema untouched', async () => {
    const other = await createServiceEnv('s3');
    try {
      for (const args of [[], ['--dry-run']]) {
        const migrate = await tool('storage-migrate', args, other.env);
        expect(migrate.code).toBe(2);
        expect(migrate.stderr).toMatch(/^The database is not upgraded for this service: \d+ of its migrations are not applied/);
      }
      const verify = await tool('storage-verify', [], other.env);
      expect(verify.code).toBe(2);
      expect(verify.stderr).toContain('start the service once, which applies them');
      if (other.database) {
        expect(await other.database.db.query("SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'customer_documents'")).toEqual([]);
      }
    } finally {
      await other.close();
    }
  }, 60_000);

  test('S3 that does not answer: 1, one line with the cause, no stack', async () => {
    const port = await freePort(); // nothing listens there
    const verify = await tool('storage-verify', [], { ...env.env, AWS_S3_ENDPOINT: `http://127.0.0.1:${port}`, S3_MAX_ATTEMPTS: '1' });
    expect(verify.code).toBe(1);
    expect(verify.stderr.trim()).toBe(`File storage is not available; try again shortly: connect ECONNREFUSED 127.0.0.1:${port}`);
  }, 60_000);

  test('the embedded database held by a running service: 1 at once, saying what to do, no stack', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'held-'));
    const held = await createPgliteDb(path.join(dir, 'pglite'), { template: await pgliteTemplate() });
    try {
      const { DATABASE_URL: _url, ...rest } = env.env;
      const verify = await tool('storage-verify', [], { ...rest, PGLITE_DATA_DIR: path.join(dir, 'pglite') });
      expect(verify.code).toBe(1);
      expect(verify.stderr.trim()).toBe(
        `PGLITE_DATA_DIR ${path.join(dir, 'pglite')} is in use by another process; the embedded database serves one process at a time ` +
          '(the service, or another tool; one that has just stopped lets go within 30 s): stop it to run this tool, or run both on Postgres (DATABASE_URL)',
      );
    } finally {
      await held.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
