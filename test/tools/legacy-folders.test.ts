import fs from 'node:fs/promises';
import path from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { migrateToS3 } from '../../src/tools/storage-migrate';
import { verifyStorage } from '../../src/tools/storage-verify';
import { asBuffer } from '../helpers/streams';
import { createToolFixture, type ToolFixture } from './tool-fixture';

/**
 * An old CRM that kept its uploads in folders, against issue 2's account of it (every file at the top of the
 * uploads folder, under its base name): two customers' rows would name one file. The tools find such rows, and
 * never make the wrong file a row's own by moving it to S3.
 */
describe('old CRM rows whose files lie in folders of UPLOAD_DIR', () => {
  let f: ToolFixture;
  let rows: { id: number; customerId: number; filePath: string; content: Buffer }[];
  beforeEach(async () => {
    f = await createToolFixture(0);
    // The lost legacy files are no part of this: their rows would hold every --fix and count as problems.
    await f.database.db.query('DELETE FROM customer_documents WHERE id = ANY($1)', [f.legacy.filter((d) => !d.content).map((d) => d.id)]);
    rows = [];
    for (const [customerId, filePath] of [
      [1, 'uploads/1/notes-x.txt'],
      [2, 'uploads/2/notes-x.txt'],
      [2, 'uploads/notes-x.txt'],
    ] as const) {
      const content = Buffer.from(`notes of ${filePath}\n`);
      const file = path.join(f.uploadDir, filePath.replace(/^uploads\//, ''));
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(file, content);
      // As the old CRM, still running, inserts: the trigger names the stored file by its base name.
      const [{ id }] = await f.database.db.query<{ id: number }>(
        `INSERT INTO customer_documents (customer_id, file_name, file_path, file_type) VALUES ($1, 'notes.txt', $2, 'text/plain') RETURNING id`,
        [customerId, filePath],
      );
      rows.push({ id, customerId, filePath, content });
    }
  });
  afterEach(() => f.close());

  const download = async (row: (typeof rows)[number]) =>
    (await f.app.request().get(`/api/customers/${row.customerId}/documents/${row.id}/download`).buffer(true).parse(asBuffer)).body as Buffer;
  const problemOf = (id: number) => f.out.lines.find((l) => l.startsWith(`PROBLEM document ${id} `));
  const stateOf = async (id: number) =>
    (await f.database.db.query<{ storage: string; file_path: string }>('SELECT storage, file_path FROM customer_documents WHERE id = $1', [id]))[0];

  test("the service refuses to serve them, 409 FILE_AMBIGUOUS, rather than one customer's file to another", async () => {
    const [first, second, top] = rows;
    for (const row of [first, second]) {
      const res = await f.app.request().get(`/api/customers/${row.customerId}/documents/${row.id}/download`);
      expect(res.status).toBe(409);
      expect(res.body.error).toEqual({ code: 'FILE_AMBIGUOUS', message: expect.stringContaining('storage:verify') });
      // Where the files lie is for the logs, not for the client.
      expect(res.body.error.message).not.toContain('notes-x');
    }
    expect(await download(top)).toEqual(top.content);
  });

  test('storage:verify names them; storage:migrate leaves them on local disk, file_path intact; once named, they move with their own bytes', async () => {
    const [first, second, top] = rows;
    const report = await verifyStorage(f.ctx, { deep: false, fix: false }, f.out);
    expect(report.problems).toBe(2);
    expect(problemOf(first.id)).toContain('names 1/notes-x.txt, a file in a folder of UPLOAD_DIR, but it is read from notes-x.txt');
    expect(problemOf(second.id)).toContain('names 2/notes-x.txt');
    expect(problemOf(top.id)).toBeUndefined();

    f.out.lines.length = 0;
    const summary = await migrateToS3(f.ctx, { dryRun: false, concurrency: 2, keepLocal: false }, f.out);
    expect(summary.failed.map((x) => x.id).sort()).toEqual([first.id, second.id].sort());
    for (const row of [first, second]) expect(await stateOf(row.id)).toEqual({ storage: 'local', file_path: row.filePath });
    // Nothing of theirs was copied; the top-level file moved as its row's.
    await expect(f.s3.client.send(new HeadObjectCommand({ Bucket: f.s3.config.bucket, Key: 'customer-documents/1/notes-x.txt' }))).rejects.toBeTruthy();
    expect((await stateOf(top.id)).storage).toBe('s3');
    expect(await download(top)).toEqual(top.content);

    // What README tells ops to do: name each row's own file.
    for (const row of [first, second]) {
      await f.database.db.query('UPDATE customer_documents SET stored_file_name = $2 WHERE id = $1', [row.id, row.filePath.replace(/^uploads\//, '')]);
    }
    for (const row of [first, second]) expect(await download(row)).toEqual(row.content);
    f.out.lines.length = 0;
    expect((await migrateToS3(f.ctx, { dryRun: false, concurrency: 2, keepLocal: false }, f.out)).failed).toEqual([]);
    for (const row of rows) {
      expect((await stateOf(row.id)).storage).toBe('s3');
      expect(await download(row)).toEqual(row.content);
    }
    expect(await verifyStorage(f.ctx, { deep: true, fix: false }, f.out)).toMatchObject({ problems: 0 });
    // Their objects lie in folders of the customer's (customer-documents/1/1/notes-x.txt): --fix, the next step
    // README gives, finds each one's row by its whole stored name and removes none.
    f.out.lines.length = 0;
    expect(await verifyStorage(f.ctx, { deep: false, fix: true, orphanMinAgeMs: 0, removalGraceMs: 0, force: true }, f.out)).toMatchObject({ problems: 0, orphans: 0, removed: 0 });
    expect(f.out.lines.filter((l) => /REMOVED|UNCLAIMED|\/notes-x/.test(l))).toEqual([]);
    for (const row of rows) expect(await download(row)).toEqual(row.content);
  });

  test('named, on local disk: storage:verify claims a file in a folder as its row\'s, and --fix keeps it', async () => {
    const [first, second] = rows;
    for (const row of [first, second]) {
      await f.database.db.query('UPDATE customer_documents SET stored_file_name = $2 WHERE id = $1', [row.id, row.filePath.replace(/^uploads\//, '')]);
    }
    expect(await verifyStorage(f.ctx, { deep: true, fix: true, orphanMinAgeMs: 0, removalGraceMs: 0, force: true }, f.out)).toMatchObject({ problems: 0, orphans: 0, removed: 0 });
    // Each file is its row's, not "kept, in a folder, where no document is stored".
    expect(f.out.lines.filter((l) => l.includes('notes-x'))).toEqual([]);
    for (const row of rows) expect(await download(row)).toEqual(row.content);
  });
});
