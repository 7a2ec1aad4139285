import fs from 'node:fs/promises';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { s3KeyFor } from '../../src/documents/document';
import { createPgliteDb } from '../../src/db/pglite';
import { openToolContext } from '../../src/tools/context';
import { MOVE_LOCK } from '../../src/documents/locks';
import { dryRun } from '../../src/tools/dry-run';
import { exitCodeOf, migrateToS3 } from '../../src/tools/storage-migrate';
import { holdLock } from '../helpers/db';
import { files } from '../helpers/files';
import { startServerProcess } from '../helpers/process';
import { createServiceEnv } from '../helpers/service-env';
import { asBuffer, readAll, sha256 } from '../helpers/streams';
import { eventually } from '../helpers/wait';
import { createToolFixture, type ToolFixture } from './tool-fixture';

const options = { dryRun: false, concurrency: 4, keepLocal: false };

describe('npm run storage:migrate', () => {
  let f: ToolFixture;
  beforeEach(async () => {
    f = await createToolFixture();
  });
  afterEach(() => f.close());

  const rows = () =>
    f.database.db.query<{ id: number; storage: string; file_path: string; sha256: string | null; size: string | number | null }>(
      'SELECT id, storage, file_path, sha256, COALESCE(size_bytes, file_size) AS size FROM customer_documents ORDER BY id',
    );
  const objects = async () =>
    ((await f.s3.client.send(new ListObjectsV2Command({ Bucket: f.s3.config.bucket }))).Contents ?? []).map((o) => o.Key!).sort();
  const localFiles = async () => (await fs.readdir(f.uploadDir)).filter((n) => n !== '.tmp').sort();
  /** Every document the service can serve, with the sha256 of what it serves. */
  const served = async () => {
    const out: Record<number, string> = {};
    for (const customer of [1, 2]) {
      const list = await f.app.request().get(`/api/customers/${customer}/documents`);
      for (const doc of list.body.documents) {
        const res = await f.app.request().get(`/api/customers/${customer}/documents/${doc.id}/download`).buffer(true).parse(asBuffer);
        if (res.status === 200) out[doc.id] = sha256(res.body);
      }
    }
    return out;
  };
  const lostIds = () => f.legacy.filter((d) => !d.content).map((d) => d.id).sort((a, b) => a - b);

  test('--dry-run lists every local document with the size of its file, and what the run would not move, and changes nothing', async () => {
    const scan = f.legacy.find((d) => d.fileName === 'scan.png')!;
    await f.database.db.query('UPDATE customer_documents SET file_size = 999 WHERE id = $1', [scan.id]); // the real run keeps it local
    const before = await rows();
    const result = await dryRun(f.ctx, f.out);
    // The sizes on disk, the NULL size of the old row included, and no size for the files that would not move.
    const movable = [...f.legacy.filter((d) => d.content && d !== scan), ...f.uploaded];
    expect(result).toEqual({ files: movable.length, kept: lostIds().length + 1, bytes: movable.reduce((n, d) => n + d.content!.length, 0) });
    expect(f.out.lines.filter((l) => l.startsWith('would move document'))).toHaveLength(result.files);
    for (const id of lostIds()) expect(f.out.lines).toContainEqual(expect.stringMatching(new RegExp(`^would not move document ${id} \\(customer 2\\): `)));
    expect(f.out.lines).toContain(`would not move document ${scan.id} (customer 1): its file has ${scan.content!.length} bytes, the row says 999: it would stay local`);
    expect(f.out.lines.at(-1)).toMatch(/^5 files, .* in all, would move to S3 bucket test-documents; 3 would not \(listed above\)$/);
    expect(await rows()).toEqual(before);
    expect(await objects()).toEqual([]);
  });

  test('moves every file, checked, switches each row, removes the local files; missing files are listed, not fatal; a second run moves nothing', async () => {
    const servedBefore = await served();
    const summary = await migrateToS3(f.ctx, options, f.out);
    expect(summary).toMatchObject({ moved: 6, failed: [], stopped: false });
    expect(summary.missing.sort((a, b) => a - b)).toEqual(lostIds());
    expect(f.out.lines.join('\n')).toContain(`2 documents have no local file (left as they are): ids`);

    for (const row of await rows()) {
      if (lostIds().includes(row.id)) {
        expect(row.storage).toBe('local');
        continue;
      }
      expect(row.storage).toBe('s3');
      expect(row.sha256).toMatch(/^[0-9a-f]{64}$/); // computed on the way for the old CRM's rows, and stored
    }
    // Every document serves the same bytes as before, now from S3; the two rows sharing one old file share one key.
    expect(await served()).toEqual(servedBefore);
    expect(await objects()).toHaveLength(5);
    expect(await localFiles()).toEqual([]);
    expect(await f.ctx.deletions.pending()).toBe(0);

    const again = await migrateToS3(f.ctx, options, f.out);
    expect(again.moved).toBe(0);
    expect(await objects()).toHaveLength(5);
  });

  test('an interrupted run (Ctrl-C) stops between files; started again it finishes, nothing lost or copied twice', async () => {
    const servedBefore = await served();
    const stop = new AbortController();
    let moves = 0;
    // Abort as soon as the first file has moved (concurrency 1: one file at a time).
    const watcher = setInterval(async () => {
      const [{ n }] = await f.database.db.query<{ n: string }>("SELECT count(*) AS n FROM customer_documents WHERE storage = 's3'");
      moves = Number(n);
      if (moves >= 1) stop.abort();
    }, 5);
    const first = await migrateToS3(f.ctx, { ...options, concurrency: 1 }, f.out, stop.signal);
    clearInterval(watcher);
    expect(first.stopped).toBe(true);
    expect(first.moved).toBeGreaterThanOrEqual(1);
    expect(first.moved).toBeLessThan(6);
    expect(f.out.lines.at(-1)).toBe('stopped before the end; run again to finish');

    const second = await migrateToS3(f.ctx, options, f.out);
    expect(first.moved + second.moved).toBe(6);
    expect(await served()).toEqual(servedBefore);
    expect(await objects()).toHaveLength(5);
    expect(await localFiles()).toEqual([]);
  });

  test("a copy left on S3 by a move stopped before its switch goes with its document, unless a twin row will move onto it", async () => {
    // What a SIGKILL between a move's copy and its switch leaves: the object at the row's S3 key, the row still local.
    const [first, , , , twin] = f.legacy; // one file of customer 1, named by two rows
    const [uploaded] = f.uploaded;
    const leftOver = async (id: number) => {
      const [row] = await f.database.db.query<{ stored_file_name: string }>('SELECT stored_file_name FROM customer_documents WHERE id = $1', [id]);
      const key = s3KeyFor(f.s3.config.prefix, 1, row.stored_file_name);
      await f.s3.client.send(new PutObjectCommand({ Bucket: f.s3.config.bucket, Key: key, Body: 'a copy' }));
      return key;
    };
    await leftOver(uploaded.id);
    const sharedCopy = await leftOver(first.id);
    const deleted = async (id: number) => {
      expect((await f.app.request().delete(`/api/customers/1/documents/${id}`)).status).toBe(204);
      await f.app.settle();
    };
    await deleted(uploaded.id);
    await deleted(first.id);
    expect(await objects()).toEqual([sharedCopy]);
    await deleted(twin.id);
    expect(await objects()).toEqual([]);
  });

  test('an old CRM row whose type no header can carry still moves (its type is resolved, not copied)', async () => {
    const [first] = f.legacy;
    await f.database.db.query("UPDATE customer_documents SET file_type = E'application/pdf\\nX-Evil: 1' WHERE id = $1", [first.id]);
    const summary = await migrateToS3(f.ctx, options, f.out);
    expect(summary.failed).toEqual([]);
    expect(summary.moved).toBe(6);
  });

  test('an old CRM row of the wrong size stays local and says what to do; a dot-file is reported missing, not failed for ever', async () => {
    const scan = f.legacy.find((d) => d.fileName === 'scan.png')!;
    await f.database.db.query('UPDATE customer_documents SET file_size = 20 WHERE id = $1', [scan.id]); // kilobytes, say
    await fs.writeFile(path.join(f.uploadDir, '.hidden.pdf'), files.pdf());
    const [{ id: hidden }] = await f.database.db.query<{ id: number }>(
      "INSERT INTO customer_documents (customer_id, file_name, file_path) VALUES (1, 'hidden.pdf', 'uploads/.hidden.pdf') RETURNING id",
    );
    const first = await migrateToS3(f.ctx, options, f.out);
    expect(first.failed).toEqual([
      { id: scan.id, error: expect.stringContaining(`the local file has ${scan.content!.length} bytes, the row says 20 (if the file is right, clear`) },
    ]);
    expect(first.missing).toContain(hidden);
    expect(f.out.lines).toContain(`MISSING document ${hidden}: its file ".hidden.pdf" has a name no store may use (served as missing) (left as it is)`);

    await f.database.db.query('UPDATE customer_documents SET file_size = NULL, size_bytes = NULL WHERE id = $1', [scan.id]);
    const second = await migrateToS3(f.ctx, options, f.out);
    expect(second).toMatchObject({ moved: 1, failed: [] });
    const [moved] = await f.database.db.query<{ storage: string; size_bytes: string }>('SELECT storage, size_bytes FROM customer_documents WHERE id = $1', [scan.id]);
    expect([moved.storage, Number(moved.size_bytes)]).toEqual(['s3', scan.content!.length]);
  });

  test('--keep-local keeps the local files', async () => {
    const before = await localFiles();
    const summary = await migrateToS3(f.ctx, { ...options, keepLocal: true }, f.out);
    expect(summary).toMatchObject({ moved: 6, failed: [] });
    expect(await localFiles()).toEqual(before);
    expect((await rows()).filter((r) => r.storage === 's3')).toHaveLength(6);
  });

  test('one mover at a time: while the background sync (or another run) moves, it waits; Ctrl-C while waiting stops it', async () => {
    const holder = await holdLock(f.ctx.db, MOVE_LOCK);
    const waitingLine = "waiting: another move to S3 is under way (the service's background sync, or another storage:migrate)";
    let run: Promise<unknown> | undefined;
    try {
      const stop = new AbortController();
      const stopped = migrateToS3(f.ctx, options, f.out, stop.signal, { pollMs: 20 });
      await eventually(() => f.out.lines.includes(waitingLine), 5_000, 'the waiting line');
      stop.abort();
      expect(await stopped).toMatchObject({ moved: 0, stopped: true });

      run = migrateToS3(f.ctx, options, f.out, undefined, { pollMs: 20 });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await objects()).toEqual([]);
      expect((await rows()).every((r) => r.storage === 'local')).toBe(true);
    } finally {
      await holder.release();
    }
    expect(await run).toMatchObject({ moved: 6, failed: [], stopped: false });
    expect(f.out.lines.filter((l) => l === waitingLine)).toHaveLength(2);
  });

  test('the service keeps serving every document while the migration runs', async () => {
    const servedBefore = await served();
    let running = true;
    const failures: string[] = [];
    const reader = (async () => {
      while (running) {
        const now = await served();
        for (const [id, hash] of Object.entries(servedBefore)) {
          if (now[Number(id)] !== hash) failures.push(`document ${id}`);
        }
      }
    })();
    await migrateToS3(f.ctx, { ...options, concurrency: 1 }, f.out);
    running = false;
    await reader;
    expect(failures).toEqual([]);
  });

  test('a failure is named and makes the exit code non-zero: S3 down stops the run', async () => {
    await f.s3.down();
    const summary = await migrateToS3(f.ctx, options, f.out);
    expect(summary.stopped).toBe(true);
    expect(summary.failed.length).toBeGreaterThan(0);
    expect(exitCodeOf(summary)).toBe(1);
    expect(f.out.lines.some((l) => /^FAILED document \d+: S3 is not answering/.test(l))).toBe(true);
    await f.s3.up();
    expect((await rows()).every((r) => r.storage === 'local')).toBe(true);
  });
});

describe('npm run storage:migrate, killed with SIGKILL midway', () => {
  test('started again it finishes: every row on S3 with its bytes, one object per file, no local file left', async () => {
    const env = await createServiceEnv('s3');
    try {
      // Sixty documents on local disk, uploaded through the service before S3 was configured.
      const localEnv = { ...env.env, STORAGE_DRIVER: 'local' };
      const service = await startServerProcess(localEnv);
      const customer = (await (await fetch(`${service.url}/api/customers`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: '{"name":"Moving GmbH"}',
      }).then((r) => r.json())) as { id: number }).id;
      const hashes = new Map<number, string>();
      for (let i = 0; i < 60; i++) {
        const form = new FormData();
        const content = files.pdf(150_000 + i);
        form.append('file', new Blob([content], { type: 'application/pdf' }), `doc-${i}.pdf`);
        const res = (await (await fetch(`${service.url}/api/customers/${customer}/documents`, { method: 'POST', body: form })).json()) as { id: number };
        hashes.set(res.id, sha256(content));
      }
      service.kill('SIGTERM');
      await service.exited;

      const tool = spawn(process.execPath, ['--import', 'tsx', path.resolve(__dirname, '../../src/tools/storage-migrate.ts'), '--concurrency', '2'], {
        env: { PATH: process.env.PATH ?? '', ...env.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
        stdio: 'ignore',
      });
      const bucket = async () =>
        ((await env.s3!.client.send(new ListObjectsV2Command({ Bucket: env.s3!.config.bucket }))).Contents ?? []).map((o) => o.Key!);
      await eventually(async () => (await bucket()).length >= 10, 60_000, 'ten files copied');
      tool.kill('SIGKILL');
      // Killed midway, not finished already: otherwise the resume below would check nothing.
      const [, signal] = await once(tool, 'exit');
      expect(signal).toBe('SIGKILL');

      // Run again, to the end (in this process, on the same database and storage).
      const database = env.database?.db ?? (await createPgliteDb(env.env.PGLITE_DATA_DIR));
      const ctx = await openToolContext({ env: { NODE_ENV: 'test', ...env.env }, db: database, logLevel: 'silent' });
      const lines: string[] = [];
      try {
        const summary = await migrateToS3(ctx, options, { isTTY: false, stream: process.stdout, line: (l) => lines.push(l) });
        expect(summary.failed).toEqual([]);
        expect(summary.moved).toBeGreaterThan(0);
        const rows = await database.query<{ id: number; storage: string; file_path: string; sha256: string }>(
          'SELECT id, storage, file_path, sha256 FROM customer_documents ORDER BY id',
        );
        expect(rows).toHaveLength(60);
        for (const row of rows) {
          expect(row.storage).toBe('s3');
          expect(row.sha256).toBe(hashes.get(row.id));
          const object = await env.s3!.client.send(new GetObjectCommand({ Bucket: env.s3!.config.bucket, Key: row.file_path }));
          expect(sha256(await readAll(object.Body as Readable))).toBe(row.sha256);
        }
        expect((await bucket()).sort()).toEqual(rows.map((r) => r.file_path).sort());
        expect((await fs.readdir(env.uploadDir)).filter((n) => n !== '.tmp')).toEqual([]);
      } finally {
        await ctx.close();
        if (!env.database) await database.close();
      }
    } finally {
      await env.close();
    }
  }, 120_000);
});

describe('npm run storage:migrate, progress', () => {
  let f: ToolFixture;
  beforeEach(async () => {
    f = await createToolFixture();
  });
  afterEach(() => f.close());

  test('without a terminal: a line every N files, then the summary', async () => {
    await migrateToS3(f.ctx, { ...options, concurrency: 1, logEvery: 2 }, f.out);
    const progress = f.out.lines.filter((l) => /^\d+\/8 files, /.test(l));
    expect(progress.map((l) => l.split(' ')[0])).toEqual(['2/8', '4/8', '6/8', '8/8']);
    expect(progress[0]).toMatch(/^2\/8 files, .* of .* moved, .*\/s$/);
  });

  test('on a terminal: a progress bar of files, bytes, rate and ETA', async () => {
    let drawn = '';
    const terminal = new PassThrough();
    terminal.on('data', (c: Buffer) => (drawn += c.toString()));
    Object.assign(terminal, { isTTY: true, columns: 120, cursorTo: () => true, clearLine: () => true, moveCursor: () => true });
    const lines: string[] = [];
    await migrateToS3(f.ctx, options, { isTTY: true, stream: terminal, line: (l) => lines.push(l) });
    expect(drawn).toMatch(/8\/8 files \| .*B \| .*\/s \| ETA/);
    expect(lines[0]).toMatch(/^moved 6 files/); // the summary follows the bar
  });
});
