import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openToolContext, type ToolContext } from '../../src/tools/context';
import type { Output } from '../../src/tools/run';
import { startTestApp, type TestApp } from '../helpers/app';
import { createTestDb, type TestDb } from '../helpers/db';
import { files } from '../helpers/files';
import { type LegacyDocument, seedLegacyCrm } from '../helpers/legacy';
import { startS3, type TestS3 } from '../helpers/s3';

/**
 * An existing CRM on local disk, as the tools meet it: the old CRM's rows (with their lost file, shared file and
 * NULL sizes), uploads made by this service on local disk, an S3 bucket to move to, and the service itself running
 * on the same database and storage.
 */
export interface ToolFixture {
  database: TestDb;
  uploadDir: string;
  s3: TestS3;
  legacy: LegacyDocument[];
  /** Documents uploaded through the service before S3 was configured: id and content. */
  uploaded: { id: number; customerId: number; content: Buffer }[];
  ctx: ToolContext;
  /** The service, configured for S3 now, on the same database and storage. */
  app: TestApp;
  out: Output & { lines: string[] };
  close(): Promise<void>;
}

export async function createToolFixture(extraUploads = 2): Promise<ToolFixture> {
  const database = await createTestDb();
  const uploadDir = await fs.mkdtemp(path.join(os.tmpdir(), 'tool-uploads-'));
  const legacy = await seedLegacyCrm(database.db, uploadDir);
  const before = await startTestApp({ database, env: { UPLOAD_DIR: uploadDir } });
  const uploaded = [];
  for (let i = 0; i < extraUploads; i++) {
    const content = files.pdf(20_000 + i);
    const res = await before.request().post('/api/customers/1/documents').attach('file', content, `new-${i}.pdf`);
    uploaded.push({ id: res.body.id as number, customerId: 1, content });
  }
  await before.close();
  const s3 = await startS3();
  const env = { NODE_ENV: 'test', UPLOAD_DIR: uploadDir, ...s3.env };
  const ctx = await openToolContext({ env, db: database.db, logLevel: 'silent' });
  const app = await startTestApp({ database, env: { ...env } });
  const lines: string[] = [];
  return {
    database,
    uploadDir,
    s3,
    legacy,
    uploaded,
    ctx,
    app,
    out: { isTTY: false, stream: process.stdout, line: (text) => lines.push(text), lines },
    async close() {
      await ctx.close();
      await app.close();
      await s3.stop();
      await database.close();
      await fs.rm(uploadDir, { recursive: true, force: true });
    },
  };
}
