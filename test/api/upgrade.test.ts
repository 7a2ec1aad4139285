import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import supertest from 'supertest';
import { loadConfig } from '../../src/config';
import { startService, type RunningService } from '../../src/server';
import { logger } from '../helpers/app';
import { createTestDb, type TestDb } from '../helpers/db';
import { type LegacyDocument, seedLegacyCrm, snapshot } from '../helpers/legacy';
import { startS3, type TestS3 } from '../helpers/s3';
import { asBuffer, sha256 } from '../helpers/streams';


describe('upgrading an existing CRM database in place', () => {
  let database: TestDb;
  let uploadDir: string;
  let legacy: LegacyDocument[];
  const running: RunningService[] = [];

  const start = async (env: Record<string, string> = {}, db = database.db, s3?: TestS3) => {
    const config = loadConfig({ NODE_ENV: 'test', PORT: '0', UPLOAD_DIR: uploadDir, ...env });
    const service = await startService(config, logger, { db, s3Client: s3?.client });
    running.push(service);
    return { service, http: supertest(`http://127.0.0.1:${service.port}`) };
  };

  beforeAll(async () => {
    database = await createTestDb();
    uploadDir = await fs.mkdtemp(path.join(os.tmpdir(), 'legacy-uploads-'));
    legacy = await seedLegacyCrm(database.db, uploadDir);
  });
  afterAll(async () => {
    await Promise.all(running.map((s) => s.close()));
    await database.close();
    await fs.rm(uploadDir, { recursive: true, force: true });
  });

  test('startup backfills stored_file_name with the base name of every row\'s file_path, all rows local', async () => {
    await start();
    const rows = await database.db.query<{ id: number; stored_file_name: string; storage: string; sha256: string | null }>(
      'SELECT id, stored_file_name, storage, sha256 FROM customer_documents ORDER BY id',
    );
    expect(rows.map((r) => r.stored_file_name)).toEqual(legacy.map((d) => path.posix.basename(d.filePath)));
    expect(rows.every((r) => r.storage === 'local' && r.sha256 === null)).toBe(true);
  });

  test('every old document with a file downloads byte for byte, with its recorded type and name', async () => {
    const { http } = await start();
    for (const doc of legacy.filter((d) => d.content)) {
      const res = await http.get(`/api/customers/${doc.customerId}/documents/${doc.id}/download`).parse(asBuffer);
      expect(res.status).toBe(200);
      expect(sha256(res.body)).toBe(sha256(doc.content!));
      expect(res.headers['content-length']).toBe(String(doc.content!.length));
      expect(res.headers['content-type']).toMatch(doc.fileType ?? 'text/plain');
      expect(res.headers['content-disposition']).toContain(`filename*=UTF-8''${encodeURIComponent(doc.fileName)}`);
      expect(res.headers.etag).toMatch(/^"legacy-[0-9a-f]{32}"$/);
      const ranged = await http
        .get(`/api/customers/${doc.customerId}/documents/${doc.id}/download`)
        .set('Range', 'bytes=-8')
        .parse(asBuffer);
      expect(ranged.status).toBe(206);
      expect((ranged.body as Buffer).equals(doc.content!.subarray(-8))).toBe(true);
    }
  });

  test('old documents are listed with the old columns folded in', async () => {
    const { http } = await start();
    const res = await http.get('/api/customers/2/documents');
    const notes = res.body.documents.find((d: { fileName: string }) => d.fileName === 'notes.txt');
    expect(notes).toMatchObject({ mimeType: 'text/plain', size: null, sha256: null, storage: 'local', category: null });
    const contract = (await http.get(`/api/customers/1/documents/${legacy[0].id}`)).body;
    expect(contract).toMatchObject({ size: legacy[0].content!.length, storedFileName: '1700000000000-123456789-contract.pdf' });
  });

  test('a row whose file was lost is a 404 FILE_NOT_FOUND; a file_path leaving UPLOAD_DIR reads nothing outside it', async () => {
    const { http } = await start();
    const lost = legacy.find((d) => d.fileName === 'lost.pdf')!;
    const res = await http.get(`/api/customers/2/documents/${lost.id}/download`);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('FILE_NOT_FOUND');
    const escape = legacy.find((d) => d.fileName === 'passwd')!;
    const attempt = await http.get(`/api/customers/2/documents/${escape.id}/download`);
    expect(attempt.status).toBe(404);
    expect(attempt.text).not.toContain('root:');
  });

  test('a row the old CRM inserts after the upgrade, with its own columns alone, works', async () => {
    const { http } = await start();
    await fs.writeFile(path.join(uploadDir, '1800000000000-1-late.txt'), 'written by the old server');
    const [{ id }] = await database.db.query<{ id: number }>(
      `INSERT INTO customer_documents (customer_id, file_name, file_path, file_type, file_size)
       VALUES (1, 'late.txt', 'uploads/1800000000000-1-late.txt', 'text/plain', 25) RETURNING id`,
    );
    const doc = await http.get(`/api/customers/1/documents/${id}`);
    expect(doc.body).toMatchObject({ storedFileName: '1800000000000-1-late.txt', storage: 'local', size: 25 });
    const res = await http.get(`/api/customers/1/documents/${id}/download`);
    expect(res.text).toBe('written by the old server');
  });

  test('a second startup changes nothing', async () => {
    const before = await snapshot(database.db);
    await start();
    expect(await snapshot(database.db)).toEqual(before);
  });

  test('after switching to S3, old local documents still download and new ones go to S3', async () => {
    const s3 = await startS3();
    try {
      const { http } = await start(s3.env, database.db, s3);
      expect((await http.get('/health')).body.storage).toBe('s3');
      const old = legacy[1];
      const res = await http.get(`/api/customers/${old.customerId}/documents/${old.id}/download`).parse(asBuffer);
      expect(sha256(res.body)).toBe(sha256(old.content!));
      const fresh = await http.post('/api/customers/1/documents').attach('file', Buffer.from('%PDF-1.4 new'), 'new.pdf');
      expect(fresh.status).toBe(201);
      expect(fresh.body.storage).toBe('s3');
      const [row] = await database.db.query<{ file_path: string }>('SELECT file_path FROM customer_documents WHERE id = $1', [fresh.body.id]);
      expect(row.file_path).toBe(`customer-documents/1/${fresh.body.storedFileName}`);
    } finally {
      await s3.stop();
    }
  });

  test('rows sharing one old file: deleting one keeps the file for the other', async () => {
    const { http, service } = await start();
    const [first, , , , copy] = legacy;
    const file = path.join(uploadDir, path.posix.basename(first.filePath));
    expect((await http.delete(`/api/customers/1/documents/${copy.id}`)).status).toBe(204);
    await service.services.tasks.idle();
    await expect(fs.stat(file)).resolves.toBeTruthy();
    expect((await http.get(`/api/customers/1/documents/${first.id}/download`)).status).toBe(200);
    expect((await http.delete(`/api/customers/1/documents/${first.id}`)).status).toBe(204);
    await service.services.tasks.idle();
    await expect(fs.stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('a row naming a file no key can reach (a dot-name) is deleted, and its removal is not retried forever', async () => {
    const { http, service } = await start();
    const [row] = await database.db.query<{ id: number }>(
      "INSERT INTO customer_documents (customer_id, file_name, file_path) VALUES (1, 'hidden.pdf', 'uploads/.hidden.pdf') RETURNING id",
    );
    expect((await http.get(`/api/customers/1/documents/${row.id}/download`)).status).toBe(404);
    expect((await http.delete(`/api/customers/1/documents/${row.id}`)).status).toBe(204);
    await service.services.tasks.idle();
    expect(await service.services.deletions.pending()).toBe(0);
  });
});

describe('startup of several instances and interrupted upgrades', () => {
  test('two instances starting at once on an old database both come up, and migrate it once', async () => {
    const database = await createTestDb();
    const uploadDir = await fs.mkdtemp(path.join(os.tmpdir(), 'legacy-uploads-'));
    const services: RunningService[] = [];
    try {
      const legacy = await seedLegacyCrm(database.db, uploadDir);
      const config = loadConfig({ NODE_ENV: 'test', PORT: '0', UPLOAD_DIR: uploadDir });
      const [a, b] = await Promise.all([
        startService(config, logger, { db: database.db }),
        startService(config, logger, { db: await database.openAgain() }),
      ]);
      services.push(a, b);
      for (const s of [a, b]) {
        const http = supertest(`http://127.0.0.1:${s.port}`);
        expect((await http.get('/health')).status).toBe(200);
        const res = await http.get(`/api/customers/1/documents/${legacy[0].id}/download`);
        expect(res.status).toBe(200);
      }
      const history = await database.db.query<{ name: string }>('SELECT name FROM document_store_migrations ORDER BY version');
      expect(history.map((h) => h.name)).toEqual([
        '001_crm_tables.sql',
        '002_document_storage_columns.sql',
        '003_backfill_stored_file_name.sql',
        '004_document_indexes.sql',
        '005_file_deletions_and_pending_moves.sql',
      ]);
    } finally {
      await Promise.all(services.map((s) => s.close()));
      await database.close();
      await fs.rm(uploadDir, { recursive: true, force: true });
    }
  });

  test('an upgrade interrupted midway (backfill half done, indexes not built) is finished by the next startup', async () => {
    const database = await createTestDb();
    const uploadDir = await fs.mkdtemp(path.join(os.tmpdir(), 'legacy-uploads-'));
    try {
      const legacy = await seedLegacyCrm(database.db, uploadDir);
      const config = loadConfig({ NODE_ENV: 'test', PORT: '0', UPLOAD_DIR: uploadDir });
      const first = await startService(config, logger, { db: database.db });
      await first.close();
      // Rewind to the state a kill during 003 leaves: 002 recorded, part of the rows backfilled, no indexes.
      await database.db.exec(`
        DELETE FROM document_store_migrations WHERE version IN ('003', '004');
        DROP INDEX customer_documents_customer_uploaded_idx;
        DROP INDEX customer_documents_stored_file_name_idx;
        UPDATE customer_documents SET stored_file_name = NULL WHERE id > ${legacy[2].id};`);
      const second = await startService(config, logger, { db: database.db });
      try {
        const missing = await database.db.query('SELECT id FROM customer_documents WHERE stored_file_name IS NULL');
        expect(missing).toEqual([]);
        const indexes = await database.db.query<{ indexname: string }>(
          "SELECT indexname FROM pg_indexes WHERE tablename = 'customer_documents' AND indexname LIKE 'customer_documents_%_idx'",
        );
        expect(indexes.map((i) => i.indexname).sort()).toEqual([
          'customer_documents_customer_uploaded_idx',
          'customer_documents_pending_storage_idx',
          'customer_documents_stored_file_name_idx',
        ]);
        const http = supertest(`http://127.0.0.1:${second.port}`);
        expect((await http.get(`/api/customers/2/documents/${legacy[2].id}/download`)).status).toBe(200);
      } finally {
        await second.close();
      }
    } finally {
      await database.close();
      await fs.rm(uploadDir, { recursive: true, force: true });
    }
  });
});
