import fs from 'node:fs/promises';
import path from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { ByteRange } from '../../src/storage';
import { Readable } from 'node:stream';
import { enqueueFileDeletions } from '../../src/documents/deletions';
import { s3KeyFor } from '../../src/documents/document';
import { MOVE_LOCK } from '../../src/documents/locks';
import { moveToS3 } from '../../src/documents/mover';
import * as repo from '../../src/documents/repository';
import { holdLock } from '../helpers/db';
import { asBuffer, sha256 } from '../helpers/streams';
import { verifyStorage } from '../../src/tools/storage-verify';
import { createToolFixture, type ToolFixture } from '../tools/tool-fixture';

/**
 * Two rows of the old CRM that share one file (same customer: the same S3 key once moved), one deleted by a user
 * while the other moves. The move copies, reads the copy back, and only then switches its row; a deletion that
 * looked only at rows already on S3 removed the object in between, and the moved row pointed at nothing.
 */
describe('a shared file of the old CRM, one row deleted while the other moves to S3', () => {
  let f: ToolFixture;
  beforeEach(async () => {
    f = await createToolFixture(0);
  });
  afterEach(() => f.close());

  test('invariant: the moving row keeps its bytes; the object goes only with the last row naming it', async () => {
    const [first, , , , twin] = f.legacy; // contract.pdf and "contract copy.pdf": customer 1, one file
    expect(twin.filePath).toBe(first.filePath);
    const row = async (id: number) => (await repo.findDocument(f.ctx.db, 1, id))!;
    expect(await moveToS3(f.ctx, await row(first.id))).toMatchObject({ result: 'moved' });

    // Hold the twin's move while it reads its copy back: written, checked next, not yet switched.
    const s3 = f.ctx.storage.s3!;
    const get = s3.get.bind(s3);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let readingBack!: () => void;
    const reached = new Promise<void>((resolve) => (readingBack = resolve));
    s3.get = async (key: string, range?: ByteRange) => {
      readingBack();
      await held;
      return get(key, range);
    };
    const moving = moveToS3(f.ctx, await row(twin.id));
    await reached;
    // Meanwhile a user deletes the row already on S3; its file's removal runs right after the delete commits.
    expect((await f.app.request().delete(`/api/customers/1/documents/${first.id}`)).status).toBe(204);
    await f.app.settle();
    release();
    expect(await moving).toMatchObject({ result: 'moved' });
    await f.ctx.deletions.runDue();

    const served = await f.app.request().get(`/api/customers/1/documents/${twin.id}/download`).buffer(true).parse(asBuffer);
    expect(served.status).toBe(200);
    expect(sha256(served.body)).toBe(sha256(twin.content!));

    // Deleting the last row that names it removes the object (the local file went when the twin switched).
    const objects = async () =>
      ((await f.s3.client.send(new ListObjectsV2Command({ Bucket: f.s3.config.bucket }))).Contents ?? []).map((o) => o.Key!);
    expect((await objects()).filter((key) => key.includes('contract'))).toHaveLength(1);
    expect((await f.app.request().delete(`/api/customers/1/documents/${twin.id}`)).status).toBe(204);
    await f.app.settle();
    expect((await objects()).filter((key) => key.includes('contract'))).toEqual([]);
    expect((await f.app.storedFiles({ localOnly: true })).filter((name) => name.includes('contract'))).toEqual([]);
  });

  test("two customers' rows sharing an old file: each deletion removes its own customer's object, never the other's", async () => {
    const [first, , , , twin] = f.legacy;
    // Customer 1's twin row of the same file would move onto the same object, and keep it: not this test's case.
    expect((await f.app.request().delete(`/api/customers/1/documents/${twin.id}`)).status).toBe(204);
    // The old CRM let customer 2's row name customer 1's file too (a document attached to both).
    const [{ id: otherId }] = await f.ctx.db.query<{ id: number }>(
      "INSERT INTO customer_documents (customer_id, file_name, file_path, file_type) VALUES (2, 'contract.pdf', $1, 'application/pdf') RETURNING id",
      [first.filePath],
    );
    const row = async (customerId: number, id: number) => (await repo.findDocument(f.ctx.db, customerId, id))!;
    expect(await moveToS3(f.ctx, await row(1, first.id))).toMatchObject({ result: 'moved' });
    expect(await moveToS3(f.ctx, await row(2, otherId))).toMatchObject({ result: 'moved' });
    const [keyOf1, keyOf2] = [(await row(1, first.id)).file_path, (await row(2, otherId)).file_path];
    expect(keyOf1).not.toBe(keyOf2);
    const objectAt = async (key: string) => f.ctx.storage.s3!.stat(key).then(() => true, () => false);

    // Customer 1's document is deleted (an erasure request, say): its object goes, although customer 2's row has
    // the same stored name; customer 2's stays and serves its bytes.
    expect((await f.app.request().delete(`/api/customers/1/documents/${first.id}`)).status).toBe(204);
    await f.app.settle();
    expect(await f.ctx.deletions.pending()).toBe(0);
    expect(await objectAt(keyOf1)).toBe(false);
    expect(await objectAt(keyOf2)).toBe(true);
    const served = await f.app.request().get(`/api/customers/2/documents/${otherId}/download`).buffer(true).parse(asBuffer);
    expect(sha256(served.body)).toBe(sha256(first.content!));
  });

  test("an object left in one customer's folder by an older version is no row's for storage:verify, though another customer's row has its name", async () => {
    const [first] = f.legacy;
    // Rows missing their files would hold back every removal.
    await f.ctx.db.query('DELETE FROM customer_documents WHERE id = ANY($1)', [f.legacy.filter((d) => !d.content).map((d) => d.id)]);
    const moved = (await moveToS3(f.ctx, (await repo.findDocument(f.ctx.db, 1, first.id))!)) && (await repo.findDocument(f.ctx.db, 1, first.id))!;
    // The same name in customer 2's folder, which no row of customer 2 names: what an older version's deletion left.
    const stray = s3KeyFor(f.ctx.config.storage.s3!.prefix, 2, moved.stored_file_name!);
    await f.ctx.storage.s3!.put(stray, Readable.from([first.content!]), { contentType: 'application/pdf' });
    f.out.lines.length = 0;
    const report = await verifyStorage(f.ctx, { deep: false, fix: true, orphanMinAgeMs: 0, removalGraceMs: 0, force: true }, f.out);
    expect(f.out.lines).toContain(`REMOVED unclaimed s3:${stray}`);
    expect(report).toMatchObject({ problems: 0, orphans: 1, removed: 1 });
    expect(await f.ctx.storage.s3!.stat(moved.file_path)).toMatchObject({ size: first.content!.length });
  });

  test('invariant: the second row of a shared file checks the object the first one moved, never writes over it', async () => {
    const [first, , , , twin] = f.legacy;
    const row = async (id: number) => (await repo.findDocument(f.ctx.db, 1, id))!;
    expect(await moveToS3(f.ctx, await row(first.id))).toMatchObject({ result: 'moved' });
    // The local file, kept for the twin, rots on the old disk: same size, one byte flipped.
    const file = path.join(f.uploadDir, path.posix.basename(first.filePath));
    const bytes = await fs.readFile(file);
    bytes[bytes.length - 1] ^= 0xff;
    await fs.writeFile(file, bytes);

    await expect(moveToS3(f.ctx, await row(twin.id))).rejects.toThrow(/the copy on S3 differs from the local file; it stays on local disk/);
    expect(await row(twin.id)).toMatchObject({ storage: 'local' });
    // The document already on S3 still serves the bytes it was moved with.
    const served = await f.app.request().get(`/api/customers/1/documents/${first.id}/download`).buffer(true).parse(asBuffer);
    expect(sha256(served.body)).toBe(sha256(first.content!));

    // Intact again (restored from a backup, say), the twin moves onto the same object, and both serve it.
    await fs.writeFile(file, first.content!);
    expect(await moveToS3(f.ctx, await row(twin.id))).toMatchObject({ result: 'moved' });
    const twinServed = await f.app.request().get(`/api/customers/1/documents/${twin.id}/download`).buffer(true).parse(asBuffer);
    expect(sha256(twinServed.body)).toBe(sha256(first.content!));
  });

  test('a shared object that went missing is put back by the twin\'s move, for both rows', async () => {
    const [first, , , , twin] = f.legacy;
    const row = async (id: number) => (await repo.findDocument(f.ctx.db, 1, id))!;
    expect(await moveToS3(f.ctx, await row(first.id))).toMatchObject({ result: 'moved' });
    const moved = await row(first.id);
    await f.ctx.storage.s3!.delete(moved.file_path); // lost on S3's side (or by an older version's race)
    expect((await f.app.request().get(`/api/customers/1/documents/${first.id}/download`)).status).toBe(404);

    expect(await moveToS3(f.ctx, await row(twin.id))).toMatchObject({ result: 'moved' });
    for (const id of [first.id, twin.id]) {
      const served = await f.app.request().get(`/api/customers/1/documents/${id}/download`).buffer(true).parse(asBuffer);
      expect(sha256(served.body)).toBe(sha256(first.content!));
    }
  });

  test('invariant: a move\'s leftover copy is removed only while no move runs; a deleted document\'s file at once', async () => {
    const s3 = f.ctx.storage.s3!;
    const prefix = f.ctx.config.storage.s3!.prefix;
    const objectAt = async (key: string) => (await s3.stat(key).then(() => true, () => false));
    // A row still on local disk whose earlier move failed its check: the copy it wrote waits in the queue. A move of
    // the row may be writing that key again, and switch onto it right after a removal checked it.
    const local = (await repo.findDocument(f.ctx.db, 2, f.legacy[2].id))!;
    expect(local.storage).toBe('local');
    const leftoverKey = s3KeyFor(prefix, local.customer_id, local.stored_file_name!);
    // And a document a user deleted: no move can switch onto its key any more.
    const goneKey = s3KeyFor(prefix, 2, 'deleted-long-ago.pdf');
    for (const key of [leftoverKey, goneKey]) await s3.put(key, Readable.from([Buffer.from('%PDF-1.4 copy')]), { contentType: 'application/pdf' });
    const ids = await enqueueFileDeletions(f.ctx.db, [
      { storage: 's3', key: leftoverKey, storedFileName: local.stored_file_name!, documentId: local.id },
      { storage: 's3', key: goneKey, storedFileName: 'deleted-long-ago.pdf', documentId: 999_999 },
    ]);

    const mover = await holdLock(f.ctx.db, MOVE_LOCK);
    try {
      expect(await f.ctx.deletions.run(ids)).toEqual({ removed: 1, failed: 0 });
      expect(await objectAt(goneKey)).toBe(false);
      expect(await objectAt(leftoverKey)).toBe(true);
      expect(await f.ctx.deletions.pending()).toBe(1);
    } finally {
      await mover.release();
    }
    await f.ctx.db.query('UPDATE document_file_deletions SET next_attempt_at = now()');
    expect(await f.ctx.deletions.runDue()).toEqual({ removed: 1, failed: 0 });
    expect(await objectAt(leftoverKey)).toBe(false);
    expect(await f.ctx.deletions.pending()).toBe(0);
  });
});
