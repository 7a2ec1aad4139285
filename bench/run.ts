/**
 * npm run bench: the service against what a user would otherwise run, on this machine, in one run. Writes
 * bench/results.json and prints a table. BENCH_QUICK=1 uses small sizes and short runs (to try the bench itself).
 */
import { execSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import pg from 'pg';
import { createPgDb } from '../src/db/pg';
import { createPgliteDb } from '../src/db/pglite';
import { migrate } from '../src/db/migrate';
import { LEGACY_SCHEMA } from '../test/helpers/legacy';
import { startS3, type TestS3 } from '../test/helpers/s3';
import { best, download, makeFile, MB, startServer, upload, withPeakRss } from './lib';

const QUICK = Boolean(process.env.BENCH_QUICK);
const SIZES = QUICK ? [1 * MB, 16 * MB] : [1 * MB, 64 * MB, 1024 * MB];
const BIG = SIZES[SIZES.length - 1];
const RUNS = QUICK ? 1 : 3;
const LOAD_SECONDS = QUICK ? 5 : 20;
const ROWS = QUICK ? 100_000 : 1_000_000;

interface Row {
  figure: string;
  value: number;
  unit: string;
  /** value / reference, when there is one */
  ratio?: number;
  reference?: string;
  goal?: string;
}
const rows: Row[] = [];
const add = (row: Row) => {
  rows.push(row);
  const ratio = row.ratio === undefined ? '' : `  ${(row.ratio * 100).toFixed(0)}% of ${row.reference}`;
  console.log(`${row.figure.padEnd(58)} ${row.value.toFixed(row.unit === 'MB/s' || row.unit === 'req/s' ? 0 : 2).padStart(9)} ${row.unit.padEnd(5)}${ratio}`);
};
const mbps = (size: number, seconds: number) => size / MB / seconds;

async function main(): Promise<void> {
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-'));
  console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model}, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}`);
  execSync('npm run build --silent', { stdio: 'inherit', cwd: path.resolve(__dirname, '..') });
  const files = new Map<number, string>();
  for (const size of SIZES) files.set(size, await makeFile(work, size));
  const s3 = await startS3('bench-documents');
  try {
    await throughput(work, files, s3);
    await smallDocuments(work);
    await listingAtScale(work);
    await upgradeAtScale();
  } finally {
    await s3.stop();
    await dropDatabases();
    await fs.rm(work, { recursive: true, force: true });
  }
  const out = path.join(__dirname, 'results.json');
  await fs.writeFile(
    out,
    `${JSON.stringify({ date: new Date().toISOString(), machine: machine(), quick: QUICK, results: rows }, null, 2)}\n`,
  );
  console.log(`\nwritten to ${path.relative(process.cwd(), out)}`);
}

function machine() {
  return { cpus: os.cpus().length, model: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 1024 ** 3), node: process.version, platform: `${os.platform()} ${os.release()}` };
}

const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const databases: string[] = [];

/**
 * A database of its own for one service process: on Postgres when one is reachable (as production runs, and so
 * the service's memory is its own: the embedded PGlite would add its whole WASM heap to the service's RSS), else
 * the embedded PGlite.
 */
async function databaseEnv(dir: string): Promise<Record<string, string>> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  try {
    await client.connect();
  } catch {
    return { PGLITE_DATA_DIR: path.join(dir, 'pglite') };
  }
  const name = `bench_${process.pid}_${databases.length}`;
  await client.query(`CREATE DATABASE ${name}`);
  await client.end();
  databases.push(name);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return { DATABASE_URL: url.toString() };
}

async function dropDatabases(): Promise<void> {
  if (databases.length === 0) return;
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  for (const name of databases) await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await client.end();
}

async function serviceEnv(dir: string, extra: Record<string, string> = {}): Promise<Record<string, string>> {
  return {
    NODE_ENV: 'production',
    AUTH_DISABLED: 'true',
    LOG_LEVEL: 'warn',
    MAX_UPLOAD_SIZE: '2gb',
    UPLOAD_DIR: path.join(dir, 'uploads'),
    ...(await databaseEnv(dir)),
    ...extra,
  };
}

async function createCustomer(port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/api/customers`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"name":"Bench"}' });
  return ((await res.json()) as { id: number }).id;
}

async function throughput(work: string, files: Map<number, string>, s3: TestS3): Promise<void> {
  console.log('\n== uploads and downloads');
  const s3env = { ...s3.env, S3_TIMEOUT: '60s' };
  const bareDir = await fs.mkdtemp(path.join(work, 'bare-'));
  const bare = await startServer('bench/servers/bare.ts', { BENCH_DIR: bareDir });
  const memDir = await fs.mkdtemp(path.join(work, 'mem-'));
  const memLocal = await startServer('bench/servers/memory.ts', { BENCH_DIR: memDir }, '/static/none');
  const memS3 = await startServer('bench/servers/memory.ts', { BENCH_DIR: memDir, ...s3env }, '/static/none');
  const svcLocal = await startServer('dist/server.js', await serviceEnv(await fs.mkdtemp(path.join(work, 'svc-local-'))), '/health');
  const svcS3 = await startServer('dist/server.js', await serviceEnv(await fs.mkdtemp(path.join(work, 'svc-s3-')), s3env), '/health');
  try {
    const customerLocal = await createCustomer(svcLocal.port);
    const customerS3 = await createCustomer(svcS3.port);
    for (const size of SIZES) {
      const file = files.get(size)!;
      const label = size >= 1024 * MB ? `${size / 1024 / MB} GB` : `${size / MB} MB`;
      const ceiling = await best(RUNS, async () => (await upload(bare.port, '/', file, size, false)).seconds);
      const memoryLocal = await best(RUNS, async () => (await upload(memLocal.port, '/upload', file, size)).seconds);
      const serviceLocal = await best(RUNS, async () => {
        const r = await upload(svcLocal.port, `/api/customers/${customerLocal}/documents`, file, size);
        if (r.status !== 201) throw new Error(`upload: ${r.status} ${r.body}`);
        return r.seconds;
      });
      add({ figure: `upload ${label}, bare pipe to disk (ceiling)`, value: mbps(size, ceiling), unit: 'MB/s' });
      add({ figure: `upload ${label}, memoryStorage + writeFile`, value: mbps(size, memoryLocal), unit: 'MB/s', ratio: ceiling / memoryLocal, reference: 'ceiling' });
      add({ figure: `upload ${label}, service to local disk`, value: mbps(size, serviceLocal), unit: 'MB/s', ratio: ceiling / serviceLocal, reference: 'ceiling', goal: '>= 80% of ceiling, faster than memoryStorage' });
      const memoryS3 = await best(RUNS, async () => (await upload(memS3.port, '/upload', file, size)).seconds);
      const serviceS3 = await best(RUNS, async () => {
        const r = await upload(svcS3.port, `/api/customers/${customerS3}/documents`, file, size);
        if (r.status !== 201 || !r.body.includes('"storage":"s3"')) throw new Error(`upload to S3: ${r.status} ${r.body}`);
        return r.seconds;
      });
      add({ figure: `upload ${label}, memoryStorage + PutObject (S3)`, value: mbps(size, memoryS3), unit: 'MB/s', ratio: ceiling / memoryS3, reference: 'ceiling' });
      add({ figure: `upload ${label}, service to S3`, value: mbps(size, serviceS3), unit: 'MB/s', ratio: memoryS3 / serviceS3, reference: 'memoryStorage + PutObject' });
    }

    // Downloads of the biggest file, and peak memory of the service for the biggest upload and download.
    const file = files.get(BIG)!;
    const label = BIG >= 1024 * MB ? `${BIG / 1024 / MB} GB` : `${BIG / MB} MB`;
    for (const [name, svc, customer] of [['local disk', svcLocal, customerLocal], ['S3', svcS3, customerS3]] as const) {
      const up = await withPeakRss(svc.pid, () => upload(svc.port, `/api/customers/${customer}/documents`, file, BIG));
      const id = JSON.parse(up.result.body).id;
      add({ figure: `peak RSS of the service, ${label} upload to ${name}`, value: up.peakRss / MB, unit: 'MB', goal: '< 150 MB' });
      const down = await withPeakRss(svc.pid, () => download(svc.port, `/api/customers/${customer}/documents/${id}/download`));
      add({ figure: `peak RSS of the service, ${label} download from ${name}`, value: down.peakRss / MB, unit: 'MB', goal: '< 150 MB' });
      const served = await best(RUNS, async () => (await download(svc.port, `/api/customers/${customer}/documents/${id}/download`)).seconds);
      const bareName = JSON.parse((await upload(bare.port, '/', file, BIG, false)).body).name;
      await fs.copyFile(path.join(bareDir, bareName), path.join(memDir, 'static.pdf')).catch(() => undefined);
      const staticTime = await best(RUNS, async () => (await download(memLocal.port, '/static/static.pdf')).seconds);
      add({ figure: `download ${label} from ${name}, service`, value: mbps(BIG, served), unit: 'MB/s', ratio: staticTime / served, reference: 'express.static', goal: '>= 90% of express.static' });
      if (name === 'local disk') add({ figure: `download ${label}, express.static`, value: mbps(BIG, staticTime), unit: 'MB/s' });
    }
  } finally {
    await Promise.all([bare, memLocal, memS3, svcLocal, svcS3].map((s) => s.stop()));
  }
}

async function smallDocuments(work: string): Promise<void> {
  console.log(`\n== 32 clients uploading and downloading 20 KB files for ${LOAD_SECONDS} s (local disk)`);
  const svc = await startServer('dist/server.js', await serviceEnv(await fs.mkdtemp(path.join(work, 'svc-load-'))), '/health');
  try {
    const customer = await createCustomer(svc.port);
    const boundary = 'bench-small-9f2';
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="small.pdf"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.7\n`),
      Buffer.alloc(20 * 1024 - 9, 'x'),
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const first = await fetch(`http://127.0.0.1:${svc.port}/api/customers/${customer}/documents`, {
      method: 'POST',
      headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` },
      body,
    });
    const { id } = (await first.json()) as { id: number };
    const result = await autocannon({
      url: `http://127.0.0.1:${svc.port}`,
      connections: 32,
      duration: LOAD_SECONDS,
      requests: [
        { method: 'POST', path: `/api/customers/${customer}/documents`, headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` }, body },
        { method: 'GET', path: `/api/customers/${customer}/documents/${id}/download` },
      ],
    });
    add({ figure: 'small documents: requests per second (uploads + downloads)', value: result.requests.average, unit: 'req/s' });
    add({ figure: 'small documents: p50 latency', value: result.latency.p50, unit: 'ms' });
    add({ figure: 'small documents: p99 latency', value: result.latency.p99, unit: 'ms' });
    add({ figure: 'small documents: errors (non-2xx, failed requests)', value: result.non2xx + result.errors, unit: '' });
  } finally {
    await svc.stop();
  }
}

async function listingAtScale(work: string): Promise<void> {
  console.log(`\n== listing one customer's 50 documents with ${ROWS.toLocaleString('en')} rows in the table (embedded PGlite)`);
  const dir = await fs.mkdtemp(path.join(work, 'svc-list-'));
  const db = await createPgliteDb(path.join(dir, 'pglite'));
  await migrate(db);
  // Customers 1..1000 share the table's rows; customer 1001 is the one listed.
  await db.exec("INSERT INTO customers (name) SELECT 'customer ' || g FROM generate_series(1, 1001) g");
  await db.exec(`INSERT INTO customer_documents (customer_id, file_name, file_path, file_type, size_bytes, stored_file_name, sha256)
    SELECT 1 + (g % 1000), 'doc-' || g || '.pdf', 'doc-' || g || '.pdf', 'application/pdf', 1000, 'doc-' || g || '.pdf', repeat('0', 64)
    FROM generate_series(1, ${ROWS - 50}) g`);
  await db.exec(`INSERT INTO customer_documents (customer_id, file_name, file_path, file_type, size_bytes, stored_file_name, sha256)
    SELECT 1001, 'mine-' || g || '.pdf', 'mine-' || g || '.pdf', 'application/pdf', 1000, 'mine-' || g || '.pdf', repeat('0', 64)
    FROM generate_series(1, 50) g`);
  await db.exec('ANALYZE customer_documents');
  await db.close();
  // On the embedded PGlite, where a fresh machine runs it, and the database filled above.
  const env = { NODE_ENV: 'production', AUTH_DISABLED: 'true', LOG_LEVEL: 'warn', UPLOAD_DIR: path.join(dir, 'uploads'), PGLITE_DATA_DIR: path.join(dir, 'pglite') };
  const svc = await startServer('dist/server.js', env, '/health');
  try {
    const result = await autocannon({ url: `http://127.0.0.1:${svc.port}/api/customers/1001/documents`, connections: 1, duration: QUICK ? 3 : 10 });
    add({ figure: 'listing at scale: p50', value: result.latency.p50, unit: 'ms' });
    add({ figure: 'listing at scale: p99', value: result.latency.p99, unit: 'ms', goal: '< 20 ms' });
  } finally {
    await svc.stop();
  }
}

async function upgradeAtScale(): Promise<void> {
  const admin = process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  console.log(`\n== upgrade of ${ROWS.toLocaleString('en')} old rows on Postgres (${new URL(admin).host})`);
  const client = new pg.Client({ connectionString: admin });
  try {
    await client.connect();
  } catch {
    console.log('no Postgres reachable: skipped (set BENCH_DATABASE_URL)');
    return;
  }
  const name = `bench_upgrade_${process.pid}`;
  await client.query(`CREATE DATABASE ${name}`);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  const db = createPgDb(url.toString(), { max: 4 });
  const writer = new pg.Client({ connectionString: url.toString() });
  try {
    await db.exec(LEGACY_SCHEMA);
    await db.exec("INSERT INTO customers (name) SELECT 'customer ' || g FROM generate_series(1, 1000) g");
    await db.exec(`INSERT INTO customer_documents (customer_id, file_name, file_path, file_type, file_size)
      SELECT 1 + (g % 1000), 'doc-' || g || '.pdf', 'uploads/' || g || '-doc.pdf', 'application/pdf', 1000 FROM generate_series(1, ${ROWS}) g`);
    // The CRM keeps writing during the upgrade: the longest any of its inserts waits is the longest a lock blocked writes.
    await writer.connect();
    let writing = true;
    let longest = 0;
    const writes = (async () => {
      while (writing) {
        const started = process.hrtime.bigint();
        await writer.query("INSERT INTO customer_documents (customer_id, file_name, file_path) VALUES (1, 'live.pdf', 'uploads/live.pdf')");
        longest = Math.max(longest, Number(process.hrtime.bigint() - started) / 1e6);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const started = Date.now();
    await migrate(db);
    const seconds = (Date.now() - started) / 1000;
    writing = false;
    await writes;
    add({ figure: `upgrade of ${ROWS.toLocaleString('en')} old rows: total`, value: seconds, unit: 's' });
    add({ figure: 'upgrade: longest wait of a concurrent write (lock held)', value: longest, unit: 'ms', goal: '< 1000 ms' });
  } finally {
    await writer.end().catch(() => undefined);
    await db.close();
    await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await client.end();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
