import fs from 'node:fs/promises';
import path from 'node:path';
import type { Db } from '../../src/db';
import { random } from './streams';

/** The CRM's tables exactly as the CRM created them, before this service existed. */
export const LEGACY_SCHEMA = `
  CREATE TABLE customers (id SERIAL PRIMARY KEY, name VARCHAR(255) NOT NULL, email VARCHAR(255),
                          created_at TIMESTAMPTZ DEFAULT now());
  CREATE TABLE customer_documents (id SERIAL PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    file_name VARCHAR(255) NOT NULL, file_path VARCHAR(1024) NOT NULL, file_type VARCHAR(255),
    file_size INTEGER, uploaded_at TIMESTAMPTZ DEFAULT now());`;

export interface LegacyDocument {
  id: number;
  customerId: number;
  fileName: string;
  filePath: string;
  fileType: string | null;
  /** The bytes on disk, or null when the old server lost the file. */
  content: Buffer | null;
}

/**
 * An existing CRM database: the old tables with rows in every file_path form the old server wrote, their files in
 * uploadDir under their base names, plus the awkward cases real data has: a NULL type and size, a lost file, two
 * rows sharing one file, and a file_path that tries to leave the upload directory.
 */
export async function seedLegacyCrm(db: Db, uploadDir: string): Promise<LegacyDocument[]> {
  await db.exec(LEGACY_SCHEMA);
  await db.exec(`INSERT INTO customers (name, email) VALUES ('Old Customer', 'old@crm.test'), ('Second Old', NULL)`);
  const pdf = Buffer.concat([Buffer.from('%PDF-1.4\n'), random(50_000)]);
  const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), random(20_000)]);
  const rows: Omit<LegacyDocument, 'id'>[] = [
    { customerId: 1, fileName: 'contract.pdf', filePath: 'uploads/1700000000000-123456789-contract.pdf', fileType: 'application/pdf', content: pdf },
    { customerId: 1, fileName: 'scan.png', filePath: '/app/backend/uploads/1700000000001-223456789-scan.png', fileType: 'image/png', content: png },
    { customerId: 2, fileName: 'notes.txt', filePath: '1700000000002-323456789-notes.txt', fileType: null, content: Buffer.from('call back on Monday\n') },
    { customerId: 2, fileName: 'lost.pdf', filePath: 'uploads/1700000000003-423456789-lost.pdf', fileType: 'application/pdf', content: null },
    { customerId: 1, fileName: 'contract copy.pdf', filePath: 'uploads/1700000000000-123456789-contract.pdf', fileType: 'application/pdf', content: pdf },
    { customerId: 2, fileName: 'passwd', filePath: '../../../../etc/passwd', fileType: 'text/plain', content: null },
  ];
  const out: LegacyDocument[] = [];
  for (const [i, row] of rows.entries()) {
    const [{ id }] = await db.query<{ id: number }>(
      `INSERT INTO customer_documents (customer_id, file_name, file_path, file_type, file_size, uploaded_at)
       VALUES ($1, $2, $3, $4, $5, now() - make_interval(days => $6)) RETURNING id`,
      [row.customerId, row.fileName, row.filePath, row.fileType, i === 2 ? null : (row.content?.length ?? 123), 30 - i],
    );
    if (row.content) await fs.writeFile(path.join(uploadDir, path.posix.basename(row.filePath)), row.content);
    out.push({ id, ...row });
  }
  return out;
}

/** Everything a startup could change: every row of the document tables, the migration history, the indexes. */
export async function snapshot(db: Db): Promise<unknown> {
  return {
    customers: await db.query('SELECT * FROM customers ORDER BY id'),
    documents: await db.query('SELECT * FROM customer_documents ORDER BY id'),
    history: await db.query('SELECT version, name, checksum, applied_at FROM document_store_migrations ORDER BY version'),
    indexes: await db.query(
      `SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('customers', 'customer_documents') ORDER BY indexname`,
    ),
  };
}
