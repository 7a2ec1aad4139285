import fs from 'node:fs/promises';
import path from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { ByteRange } from '../../src/storage';
import { moveToS3 } from '../../src/documents/mover';
import * as repo from '../../src/documents/repository';
import { asBuffer, sha256 } from '../helpers/streams';
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
});
