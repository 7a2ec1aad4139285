import { createHash } from 'node:crypto';
import mime from 'mime-types';
import type { StorageName } from '../config';
import { isMimeType, normaliseMimeType } from './file-types';

/** A customer_documents row as the repository reads it (see repository.ts for how legacy columns fold in). */
export interface DocumentRow {
  id: number;
  customer_id: number;
  file_name: string;
  file_path: string;
  file_type: string | null;
  stored_file_name: string | null;
  storage: StorageName;
  pending_storage: StorageName | null;
  sha256: string | null;
  size: number | string | null;
  category: string | null;
  description: string | null;
  uploaded_at: Date | null;
}

/** A document as the API shows it. */
export interface Document {
  id: number;
  customerId: number;
  fileName: string;
  storedFileName: string | null;
  mimeType: string;
  size: number | null;
  sha256: string | null;
  storage: StorageName;
  /** 's3' while a document kept on local disk during an S3 outage waits for the background job to move it. */
  pendingStorage: StorageName | null;
  category: string | null;
  description: string | null;
  uploadedAt: Date | null;
}

export function toDocument(row: DocumentRow): Document {
  return {
    id: row.id,
    customerId: row.customer_id,
    fileName: row.file_name,
    storedFileName: row.stored_file_name,
    mimeType: mimeTypeOf(row),
    // BIGINT arrives as a string from pg and as a number from PGlite.
    size: row.size === null ? null : Number(row.size),
    sha256: row.sha256,
    storage: row.storage,
    pendingStorage: row.pending_storage ?? null,
    category: row.category,
    description: row.description,
    uploadedAt: row.uploaded_at,
  };
}

/**
 * The type a document is served as. Rows from the old CRM may lack one, or hold whatever a browser sent; a value
 * that is not a MIME type (it would not even fit in a header) falls back to the name's extension.
 */
export function mimeTypeOf(row: Pick<DocumentRow, 'file_type' | 'file_name'>): string {
  const recorded = normaliseMimeType(row.file_type ?? undefined);
  if (isMimeType(recorded)) return recorded;
  return mime.lookup(row.file_name) || 'application/octet-stream';
}

/** What names a row's stored file. */
type FileOfRow = Pick<DocumentRow, 'storage' | 'file_path' | 'stored_file_name'>;

/**
 * Where a row's bytes are. S3 rows record their full object key in file_path, so a later change of
 * AWS_S3_PREFIX never strands them. Local rows are UPLOAD_DIR/<stored_file_name>: for rows from before this
 * service that is the base name of whatever file_path says, which is where the old server wrote every file.
 */
export function storageKeyOf(row: FileOfRow): string | undefined {
  if (row.storage === 's3') return row.file_path;
  return row.stored_file_name ?? undefined;
}

/**
 * Whether two reads of a row name the same stored file. A file not found where a row named it may have moved with
 * the row meanwhile (a move to S3 switches the row, then removes the local file): it is looked for again only when
 * the row, read again, names another.
 */
export function namesSameFile(a: FileOfRow, b: FileOfRow): boolean {
  return a.storage === b.storage && storageKeyOf(a) === storageKeyOf(b);
}

/** The S3 key of a document's file: under the prefix and the customer, by its stored name. */
export function s3KeyFor(prefix: string | undefined, customerId: number, storedFileName: string): string {
  return [prefix, String(customerId), storedFileName].filter(Boolean).join('/');
}

/**
 * The customer whose folder an S3 key of `storedFileName` lies in (s3KeyFor's layout, whatever the prefix was), or
 * undefined for a key not laid out so.
 */
export function customerOfS3Key(key: string, storedFileName: string): number | undefined {
  if (!key.endsWith(`/${storedFileName}`)) return undefined;
  const folder = key.slice(0, key.length - storedFileName.length - 1);
  const customer = folder.slice(folder.lastIndexOf('/') + 1);
  return /^[1-9][0-9]{0,14}$/.test(customer) ? Number(customer) : undefined;
}

/**
 * Every place a deleted row's bytes may be. A local document may already have its copy on S3: the sync job and
 * storage:migrate copy before they switch the row, and one stopped between the two (a crash, a SIGKILL, a rerun that
 * never comes) leaves a copy no row records. So with S3 configured (`s3`), or a move pending, that key goes too;
 * removing a key that is not there is a no-op, and one a twin row would move onto is kept (the deletion queue).
 */
export function storedFilesOf(row: DocumentRow, s3: { prefix: string } | undefined): FileToRemove[] {
  const key = storageKeyOf(row);
  if (!key) return [];
  const files: FileToRemove[] = [{ storage: row.storage, key, storedFileName: row.stored_file_name, documentId: row.id }];
  const s3Prefix = s3?.prefix;
  if (row.storage === 'local' && (row.pending_storage === 's3' || s3) && row.stored_file_name) {
    files.push({ storage: 's3', key: s3KeyFor(s3Prefix, row.customer_id, row.stored_file_name), storedFileName: row.stored_file_name, documentId: row.id });
  }
  return files;
}

export interface FileToRemove {
  storage: StorageName;
  key: string;
  storedFileName: string | null;
  documentId: number | null;
}

/**
 * A strong validator: a document's bytes never change after upload (a new version is a new document), so the
 * sha256 where known, else a digest of where the bytes are stored, identifies them for good.
 */
export function etagOf(row: Pick<DocumentRow, 'sha256' | 'storage' | 'file_path' | 'stored_file_name' | 'id'>): string {
  if (row.sha256) return `"${row.sha256}"`;
  const where = `${row.id}:${row.storage}:${storageKeyOf(row) ?? ''}`;
  return `"legacy-${createHash('sha256').update(where).digest('hex').slice(0, 32)}"`;
}
