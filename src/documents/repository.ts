import type { StorageName } from '../config';
import { pageOf, type Queryable } from '../db';
import { customerOfS3Key, type DocumentRow } from './document';

/**
 * Every read folds the columns of rows from before this service into the new ones: stored_file_name falls back
 * to the base name of file_path (for a row inserted before the backfill reached it), and size to the old INTEGER
 * file_size. The old CRM can keep inserting rows with its own columns alone.
 */
const COLUMNS = `id, customer_id, file_name, file_path, file_type,
  COALESCE(stored_file_name, crm_file_basename(file_path)) AS stored_file_name,
  storage, pending_storage, sha256, COALESCE(size_bytes, file_size) AS size, category, description, uploaded_at`;

// Matches customer_documents_customer_uploaded_idx, so a customer's listing is one index range scan.
const NEWEST_FIRST = 'ORDER BY uploaded_at DESC NULLS LAST, id DESC';

/** Where a page of a customer's documents ended: its last row's id and upload time, exact (microseconds) as text. */
export interface DocumentsCursor {
  readonly uploadedAt: string | null;
  readonly id: number;
}

/**
 * A customer's documents, newest first, `limit` at a time after `after` (keyset, so every page is one index range
 * however deep). `next` is set when the page is full: there may be more.
 */
export async function listDocumentsPage(
  q: Queryable,
  customerId: number,
  after: DocumentsCursor | undefined,
  limit: number,
): Promise<{ rows: DocumentRow[]; next?: DocumentsCursor }> {
  // Rows without an upload time (the old CRM's) come last, by id; before them, by time, then id.
  const [where, params] = !after
    ? ['', [customerId, limit + 1]]
    : after.uploadedAt === null
      ? ['AND uploaded_at IS NULL AND id < $3', [customerId, limit + 1, after.id]]
      : ['AND ((uploaded_at, id) < ($4::timestamptz, $3) OR uploaded_at IS NULL)', [customerId, limit + 1, after.id, after.uploadedAt]];
  const rows = await q.query<DocumentRow & { uploaded_at_exact: string | null }>(
    `SELECT ${COLUMNS}, uploaded_at::text AS uploaded_at_exact FROM customer_documents
      WHERE customer_id = $1 ${where} ${NEWEST_FIRST} LIMIT $2`,
    params,
  );
  const page = pageOf(rows, limit);
  const last = page.rows.at(-1);
  return { rows: page.rows, next: page.more && last ? { uploadedAt: last.uploaded_at_exact, id: Number(last.id) } : undefined };
}

export async function findDocument(q: Queryable, customerId: number, id: number): Promise<DocumentRow | undefined> {
  const [row] = await q.query<DocumentRow>(
    `SELECT ${COLUMNS} FROM customer_documents WHERE id = $1 AND customer_id = $2`,
    [id, customerId],
  );
  return row;
}

export interface NewDocument {
  customerId: number;
  fileName: string;
  /** The storage key: the S3 object key, or the path under UPLOAD_DIR. */
  filePath: string;
  mimeType: string;
  size: number;
  storedFileName: string;
  storage: StorageName;
  /** Set when the upload was kept on local disk because S3 failed: the store it is to move to. */
  pendingStorage: StorageName | null;
  sha256: string;
  category: string | null;
  description: string | null;
}

const INT4_MAX = 2_147_483_647;

export async function insertDocument(q: Queryable, doc: NewDocument): Promise<DocumentRow> {
  const [row] = await q.query<DocumentRow>(
    `INSERT INTO customer_documents
       (customer_id, file_name, file_path, file_type, file_size, size_bytes, stored_file_name, storage,
        pending_storage, sha256, category, description)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
     RETURNING ${COLUMNS}`,
    [
      doc.customerId,
      doc.fileName,
      doc.filePath,
      doc.mimeType,
      // The old INTEGER column too, for the CRM screens that still read it, where the size fits.
      doc.size <= INT4_MAX ? doc.size : null,
      doc.size,
      doc.storedFileName,
      doc.storage,
      doc.pendingStorage,
      doc.sha256,
      doc.category,
      doc.description,
    ],
  );
  return row;
}

export async function deleteDocument(q: Queryable, customerId: number, id: number): Promise<DocumentRow | undefined> {
  const [row] = await q.query<DocumentRow>(
    `DELETE FROM customer_documents WHERE id = $1 AND customer_id = $2 RETURNING ${COLUMNS}`,
    [id, customerId],
  );
  return row;
}

export function deleteCustomerDocuments(q: Queryable, customerId: number): Promise<DocumentRow[]> {
  return q.query<DocumentRow>(`DELETE FROM customer_documents WHERE customer_id = $1 RETURNING ${COLUMNS}`, [
    customerId,
  ]);
}

/**
 * Whether a stored file must stay: some row still names it. Rows of the old CRM can share one file, which must
 * outlive each of them; erring towards "referenced" can only keep a file too long, never lose one.
 *
 * An object on S3 stays while a row on S3 records its key, or a row but `documentId` (the row the removal is for,
 * deleted or not moved) is local and would move onto it: the same stored name in the same customer's folder. Such a
 * row's move copies first and switches after, so "no S3 row names it" can turn false between the check and the
 * delete, and the switched row would point at nothing. "No local row would move onto it" cannot: stored names are
 * never reused. A move of `documentId` itself, still local, could: the removal of its leftover copy is checked and
 * done under MOVE_LOCK (locks.ts), beside no move. A local file has no such race; nothing moves onto local disk.
 *
 * By key and customer, not by stored name alone: old CRM rows of two customers sharing a file move to two objects,
 * one in each customer's folder, and one customer's deleted document must not keep its object for good because the
 * other's row has the same name.
 */
export async function isStoredFileReferenced(
  q: Queryable,
  file: { storage: StorageName; key: string; storedFileName: string },
  documentId?: number | string | null,
): Promise<boolean> {
  // stored_file_name first, not the COALESCE of the reads: it is indexed, and every row has it once migrated.
  const rows =
    file.storage === 's3'
      ? await q.query(
          `SELECT 1 FROM customer_documents WHERE stored_file_name = $1
              AND ((storage = 's3' AND file_path = $2)
                OR (storage = 'local' AND id IS DISTINCT FROM $3 AND ($4::bigint IS NULL OR customer_id = $4::bigint)))
            LIMIT 1`,
          [file.storedFileName, file.key, documentId ?? null, customerOfS3Key(file.key, file.storedFileName) ?? null],
        )
      : await q.query("SELECT 1 FROM customer_documents WHERE stored_file_name = $1 AND storage = 'local' LIMIT 1", [
          file.storedFileName,
        ]);
  return rows.length > 0;
}

/**
 * Waits, inside `tx`, until every write to customer_documents under way has committed or rolled back: SHARE is the
 * weakest lock that waits for them, and later writes wait for it in turn until `tx` ends. At most 500 ms, then it
 * fails (55P03), as the migrations' locks do: meanwhile the CRM's writes queue behind it.
 */
export async function awaitDocumentWriters(tx: Queryable): Promise<void> {
  await tx.query("SET LOCAL lock_timeout = '500ms'");
  await tx.query('LOCK TABLE customer_documents IN SHARE MODE');
}

/** Whether the document is still there, on local disk: a move of it may be under way. */
export async function isLocalDocument(q: Queryable, id: number | string): Promise<boolean> {
  return (await q.query("SELECT 1 FROM customer_documents WHERE id = $1 AND storage = 'local'", [id])).length > 0;
}

/** Whether a row on S3 points at `key` (looked up by its stored name, which is indexed). */
export async function isS3KeyInUse(q: Queryable, storedFileName: string, key: string): Promise<boolean> {
  const rows = await q.query(
    "SELECT 1 FROM customer_documents WHERE stored_file_name = $1 AND storage = 's3' AND file_path = $2 LIMIT 1",
    [storedFileName, key],
  );
  return rows.length > 0;
}

/** Documents waiting to move to `storage`, in id order after `afterId`: the sync job's work list, in pages. */
export function listPendingMoves(q: Queryable, storage: StorageName, afterId: number, limit: number): Promise<DocumentRow[]> {
  return q.query<DocumentRow>(
    `SELECT ${COLUMNS} FROM customer_documents WHERE pending_storage = $1 AND id > $2 ORDER BY id LIMIT $3`,
    [storage, afterId, limit],
  );
}

/** Documents stored on local disk, in id order after `afterId`: storage:migrate's work list, in pages. */
export function listLocalDocuments(q: Queryable, afterId: number, limit: number): Promise<DocumentRow[]> {
  return q.query<DocumentRow>(
    `SELECT ${COLUMNS} FROM customer_documents WHERE storage = 'local' AND id > $1 ORDER BY id LIMIT $2`,
    [afterId, limit],
  );
}

/**
 * Points a local document at its checked copy on S3, filling in the sha256 and size of rows from before this
 * service. Changes nothing (and answers false) when the row is gone or already moved by someone else meanwhile.
 */
export async function switchToS3(
  q: Queryable,
  id: number,
  key: string,
  checked: { size: number; sha256: string },
): Promise<boolean> {
  const rows = await q.query(
    `UPDATE customer_documents
        SET storage = 's3', file_path = $2, pending_storage = NULL,
            sha256 = COALESCE(sha256, $3), size_bytes = COALESCE(size_bytes, $4)
      WHERE id = $1 AND storage = 'local' RETURNING id`,
    [id, key, checked.sha256, checked.size],
  );
  return rows.length > 0;
}
