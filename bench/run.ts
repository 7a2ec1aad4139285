/**
 * npm run bench: the service against what a user would otherwise run, on this machine, in one run. Prints a table
 * and writes it to bench/results.json and, in Markdown, to bench/results.md. BENCH_QUICK=1 uses small sizes and
 * short runs (to try the bench itself). BENCH_ONLY=<case> runs one case (throughput, small,
 * many-uploads, many-listings, listing, upgrade)
 * and only prints its table.
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
import { type BenchS3, compare, type Contender, download, makeFile, MB, slowUpload, startS3Server, startServer, upload, withPeakRss } from './lib';
import { consoleLine, markdownTable, mbps, type Row, spread } from './table';

const QUICK = Boolean(process.env.BENCH_QUICK);
const SIZES = QUICK ? [1 * MB, 16 * MB] : [1 * MB, 64 * MB, 1024 * MB];
const BIG = SIZES[SIZES.length - 1];
/** Timed rounds per size: enough for a stable median of the small ones, without hours on the big ones. */
const ROUNDS = (size: number) => (QUICK ? 3 : size <= 1 * MB ? 40 : size <= 64 * MB ? 7 : 5);
const WARMUP = (size: number) => (size <= 1 * MB ? 20 : 1);
const LOAD_SECONDS = QUICK ? 5 : 20;
const ROWS = QUICK ? 100_000 : 1_000_000;
const ONLY = process.env.BENCH_ONLY;
const runs = (name: string) => !ONLY || ONLY === name;

const rows: Row[] = [];
const add = (row: Row) => {
  rows.push(row);
  console.log(consoleLine(row));
};
const labelOf = (size: number) => (size >= 1024 * MB ? `${size / 1024 / MB} GB` : `${size / MB} MB`);

async function main(): Promise<void> {
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-'));
  console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model}, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}`);
  execSync('npm run build --silent', { stdio: 'inherit', cwd: path.resolve(__dirname, '..') });
  const files = new Map<number, string>();
  if (runs('throughput')) for (const size of SIZES) files.set(size, await makeFile(work, size));
  const s3 = await startS3Server(await fs.mkdtemp(path.join(work, 's3-')));
  try {
    if (runs('throughput')) await throughput(work, files, s3);
    if (runs('small')) await smallDocuments(work);
    if (runs('many-uploads')) await manySlowUploads(work, s3);
    if (runs('many-listings')) await manyListings(work);
    if (runs('listing')) await listingAtScale(work);
    if (runs('upgrade')) await upgradeAtScale();
  } finally {
    await s3.stop();
    await dropDatabases();
    await fs.rm(work, { recursive: true, force: true });
  }
  if (ONLY) {
    console.log(`\n${markdownTable(rows)}`);
    return;
  }
  const out = path.join(__dirname, 'results.json');
  await fs.writeFile(
    out,
    `${JSON.stringify({ date: new Date().toISOString(), machine: machine(), quick: QUICK, results: rows }, null, 2)}\n`,
  );
  const markdown = path.join(__dirname, 'results.md');
  await fs.writeFile(markdown, markdownTable(rows));
  console.log(`\nwritten to ${path.relative(process.cwd(), out)} and ${path.relative(process.cwd(), markdown)}`);
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

async function throughput(work: string, files: Map<number, string>, s3: BenchS3): Promise<void> {
  console.log('\n== uploads and downloads');
  const bareDir = await fs.mkdtemp(path.join(work, 'bare-'));
  const bare = await startServer('bench/servers/bare.ts', { BENCH_DIR: bareDir });
  const memDir = await fs.mkdtemp(path.join(work, 'mem-'));
  const memLocal = await startServer('bench/servers/memory.ts', { BENCH_DIR: memDir }, '/static/none');
  const memS3 = await startServer('bench/servers/memory.ts', { BENCH_DIR: memDir, ...s3.env }, '/static/none');
  const svcLocal = await startServer('dist/server.js', await serviceEnv(await fs.mkdtemp(path.join(work, 'svc-local-'))), '/health');
  const svcS3 = await startServer('dist/server.js', await serviceEnv(await fs.mkdtemp(path.join(work, 'svc-s3-')), s3.env), '/health');
  try {
    const customerLocal = await createCustomer(svcLocal.port);
    const customerS3 = await createCustomer(svcS3.port);
    for (const size of SIZES) {
      const file = files.get(size)!;
      const label = labelOf(size);
      const accepted = <R extends { status: number; body: string }>(to: string, r: R): R => {
        if (r.status !== 201 || (to === 's3' && !r.body.includes('"storage":"s3"'))) throw new Error(`upload to ${to}: ${r.status} ${r.body}`);
        return r;
      };
      const contenders: Contender[] = [
        { name: 'ceiling', pids: [bare.pid], run: async () => (await upload(bare.port, '/', file, size, false)).seconds },
        { name: 'memoryLocal', pids: [memLocal.pid], run: async () => accepted('memoryStorage + writeFile', await upload(memLocal.port, '/upload', file, size)).seconds },
        { name: 'serviceLocal', pids: [svcLocal.pid], run: async () => accepted('local', await upload(svcLocal.port, `/api/customers/${customerLocal}/documents`, file, size)).seconds },
        { name: 'memoryS3', pids: [memS3.pid, s3.pid], run: async () => accepted('memoryStorage + PutObject', await upload(memS3.port, '/upload', file, size)).seconds },
        { name: 'serviceS3', pids: [svcS3.pid, s3.pid], run: async () => accepted('s3', await upload(svcS3.port, `/api/customers/${customerS3}/documents`, file, size)).seconds },
      ];
      const m = await compare(contenders, ROUNDS(size), WARMUP(size));
      const t = (name: string) => m.get(name)!.seconds;
      const runs = (name: string) => spread(size, m.get(name)!.runs);
      const cpu = (name: string, i = 0) => m.get(name)!.cpuMs[i];
      add({ figure: `upload ${label}, bare pipe to disk (ceiling)`, value: mbps(size, t('ceiling')), unit: 'MB/s', note: runs('ceiling') });
      add({ figure: `upload ${label}, memoryStorage + writeFile`, value: mbps(size, t('memoryLocal')), unit: 'MB/s', ratio: t('ceiling') / t('memoryLocal'), reference: 'ceiling', note: runs('memoryLocal') });
      add({ figure: `upload ${label}, service to local disk`, value: mbps(size, t('serviceLocal')), unit: 'MB/s', ratio: t('ceiling') / t('serviceLocal'), reference: 'ceiling', goal: '>= 80% of ceiling, faster than memoryStorage', note: runs('serviceLocal') });
      add({ figure: `upload ${label}, service to local disk, vs memoryStorage`, value: mbps(size, t('serviceLocal')), unit: 'MB/s', ratio: t('memoryLocal') / t('serviceLocal'), reference: 'memoryStorage + writeFile' });
      add({ figure: `upload ${label}, memoryStorage + PutObject (S3)`, value: mbps(size, t('memoryS3')), unit: 'MB/s', ratio: t('ceiling') / t('memoryS3'), reference: 'ceiling', note: runs('memoryS3') });
      add({ figure: `upload ${label}, service to S3`, value: mbps(size, t('serviceS3')), unit: 'MB/s', ratio: t('memoryS3') / t('serviceS3'), reference: 'memoryStorage + PutObject', note: runs('serviceS3') });
      // Where the time goes: CPU per upload of each server, and of the S3 server behind it.
      add({ figure: `CPU per ${label} upload to local disk, service`, value: cpu('serviceLocal'), unit: 'ms', note: `ceiling / memoryStorage / service: ${cpu('ceiling').toFixed(0)} / ${cpu('memoryLocal').toFixed(0)} / ${cpu('serviceLocal').toFixed(0)}` });
      add({ figure: `CPU per ${label} upload to S3, service + S3 server`, value: cpu('serviceS3') + cpu('serviceS3', 1), unit: 'ms', note: `PutObject / service, each + S3 server: ${cpu('memoryS3').toFixed(0)} + ${cpu('memoryS3', 1).toFixed(0)} / ${cpu('serviceS3').toFixed(0)} + ${cpu('serviceS3', 1).toFixed(0)}` });
    }

    // Downloads of the biggest file, and peak memory of the service for the biggest upload and download.
    const file = files.get(BIG)!;
    const label = labelOf(BIG);
    const bareName = JSON.parse((await upload(bare.port, '/', file, BIG, false)).body).name;
    await fs.copyFile(path.join(bareDir, bareName), path.join(memDir, 'static.pdf'));
    // The same bytes put on S3 by the memoryStorage server, which pipes them back from a bare GetObject.
    const s3Name = JSON.parse((await upload(memS3.port, '/upload', file, BIG)).body).name;
    const served: Record<string, { port: number; path: string }> = {};
    for (const [name, svc, customer] of [['local disk', svcLocal, customerLocal], ['S3', svcS3, customerS3]] as const) {
      const up = await withPeakRss(svc.pid, () => upload(svc.port, `/api/customers/${customer}/documents`, file, BIG));
      const id = JSON.parse(up.result.body).id;
      add({ figure: `peak RSS of the service, ${label} upload to ${name}`, value: up.peakRss / MB, unit: 'MB', goal: '< 150 MB' });
      const documentPath = `/api/customers/${customer}/documents/${id}/download`;
      const down = await withPeakRss(svc.pid, () => download(svc.port, documentPath));
      add({ figure: `peak RSS of the service, ${label} download from ${name}`, value: down.peakRss / MB, unit: 'MB', goal: '< 150 MB' });
      served[name] = { port: svc.port, path: documentPath };
    }
    const fetched = async (port: number, urlPath: string) => {
      const r = await download(port, urlPath);
      if (r.status !== 200 || r.bytes !== BIG) throw new Error(`download ${urlPath}: ${r.status}, ${r.bytes} bytes`);
      return r.seconds;
    };
    const m = await compare(
      [
        { name: 'static', run: () => fetched(memLocal.port, '/static/static.pdf') },
        { name: 'bare', run: () => fetched(bare.port, `/${bareName}`) },
        { name: 'local disk', run: () => fetched(served['local disk'].port, served['local disk'].path) },
        { name: 'S3', run: () => fetched(served.S3.port, served.S3.path) },
        { name: 'bare S3', run: () => fetched(memS3.port, `/s3/${s3Name}`) },
      ],
      QUICK ? 3 : 5,
    );
    const t = (name: string) => m.get(name)!.seconds;
    const runs = (name: string) => spread(BIG, m.get(name)!.runs);
    add({ figure: `download ${label}, express.static`, value: mbps(BIG, t('static')), unit: 'MB/s', note: runs('static') });
    add({ figure: `download ${label}, bare pipe of the file`, value: mbps(BIG, t('bare')), unit: 'MB/s', ratio: t('static') / t('bare'), reference: 'express.static' });
    for (const name of ['local disk', 'S3']) {
      add({ figure: `download ${label} from ${name}, service`, value: mbps(BIG, t(name)), unit: 'MB/s', ratio: t('static') / t(name), reference: 'express.static', goal: '>= 90% of express.static', note: runs(name) });
    }
    // What S3 itself allows here: the same object through a bare GetObject pipe, against which the service's own cost shows.
    add({ figure: `download ${label}, bare pipe of a GetObject (S3)`, value: mbps(BIG, t('bare S3')), unit: 'MB/s', ratio: t('static') / t('bare S3'), reference: 'express.static' });
    add({ figure: `download ${label} from S3, service, vs bare GetObject pipe`, value: mbps(BIG, t('S3')), unit: 'MB/s', ratio: t('bare S3') / t('S3'), reference: 'bare pipe of a GetObject' });
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

/**
 * Many clients on slow lines uploading to S3 at once: each upload holds its parts in memory while its client fills
 * them, so memory grows with how many run, not with file size. With S3_UPLOAD_MEMORY (the default) and without it
 * (a cap no burst reaches), side by side: peak RSS, and how many were accepted or refused as busy.
 */
async function manySlowUploads(work: string, s3: BenchS3): Promise<void> {
  const clients = QUICK ? 20 : 50;
  const size = 20 * MB;
  const rate = 1 * MB;
  console.log(`\n== ${clients} clients at once, each uploading ${size / MB} MB at ${rate / MB} MB/s to S3`);
  for (const [label, extra] of [
    ['S3_UPLOAD_MEMORY=128mb (default)', {}],
    ['S3_UPLOAD_MEMORY=256mb', { S3_UPLOAD_MEMORY: '256mb' }],
    ['no cap (S3_UPLOAD_MEMORY=64gb)', { S3_UPLOAD_MEMORY: '64gb' }],
  ] as const) {
    const svc = await startServer('dist/server.js', await serviceEnv(await fs.mkdtemp(path.join(work, 'svc-many-')), { ...s3.env, ...extra }), '/health');
    try {
      const customer = await createCustomer(svc.port);
      const { result, peakRss } = await withPeakRss(svc.pid, () =>
        Promise.all(Array.from({ length: clients }, () => slowUpload(svc.port, `/api/customers/${customer}/documents`, size, rate))),
      );
      const count = (check: (r: { status: number; code?: string }) => boolean) => result.filter(check).length;
      const accepted = count((r) => r.status === 201);
      const busy = count((r) => r.code === 'STORAGE_BUSY');
      const other = clients - accepted - busy;
      add({
        figure: `${clients} slow uploads to S3 at once, ${label}: peak RSS`,
        value: peakRss / MB,
        unit: 'MB',
        note: `${accepted} accepted, ${busy} refused busy${other ? `, ${other} other` : ''}`,
      });
    } finally {
      await svc.stop();
    }
  }
}

/**
 * A burst of listings of a long list: each listing holds up to two pages of rows while it is written, so the page
 * size (LIST_PAGE) is what such a burst costs in memory.
 */
async function manyListings(work: string): Promise<void> {
  const clients = QUICK ? 100 : 500;
  const documents = 5_000;
  console.log(`\n== ${clients} listings at once of a customer with ${documents.toLocaleString('en')} documents`);
  const env = await serviceEnv(await fs.mkdtemp(path.join(work, 'svc-listings-')));
  const svc = await startServer('dist/server.js', env, '/health');
  try {
    const customer = await createCustomer(svc.port);
    const db = env.DATABASE_URL ? createPgDb(env.DATABASE_URL, { max: 2 }) : undefined;
    if (!db) throw new Error('this case needs Postgres (BENCH_DATABASE_URL, DATABASE_URL or 127.0.0.1:5432)');
    await db.query(
      `INSERT INTO customer_documents (customer_id, file_name, file_path, stored_file_name, file_type, file_size, size_bytes, storage, sha256)
       SELECT $1, 'document-' || n || '.pdf', n || '.pdf', n || '.pdf', 'application/pdf', 1000, 1000, 'local', repeat('a', 64)
       FROM generate_series(1, ${documents}) AS n`,
      [customer],
    );
    await db.close();
    const listing = async () => {
      const res = await fetch(`http://127.0.0.1:${svc.port}/api/customers/${customer}/documents`).catch(() => undefined);
      if (!res) return 'failed';
      const text = await res.text().catch(() => '');
      if (res.status !== 200) return String(res.status);
      return (JSON.parse(text) as { documents: unknown[] }).documents.length === documents ? 'whole' : 'cut short';
    };
    const { result, peakRss } = await withPeakRss(svc.pid, () => Promise.all(Array.from({ length: clients }, listing)));
    const outcomes = [...new Set(result)].map((o) => `${result.filter((r) => r === o).length} ${o}`).join(', ');
    add({ figure: `${clients} listings at once of ${documents.toLocaleString('en')} documents: peak RSS`, value: peakRss / MB, unit: 'MB', note: outcomes });
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
  console.log(`\n== upgrade of ${ROWS.toLocaleString('en')} old rows on Postgres (${new URL(ADMIN_URL).host})`);
  const client = new pg.Client({ connectionString: ADMIN_URL });
  try {
    await client.connect();
  } catch {
    console.log('no Postgres reachable: skipped (set BENCH_DATABASE_URL)');
    return;
  }
  const name = `bench_upgrade_${process.pid}`;
  await client.query(`CREATE DATABASE ${name}`);
  const url = new URL(ADMIN_URL);
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
