import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream';
import { v7 as uuidv7 } from 'uuid';
import type { Config, StorageName } from '../config';
import type { Db } from '../db';
import { BadRequestError, customerNotFound, documentNotFound, UnsupportedMediaTypeError } from '../errors';
import type { Logger } from '../logger';
import { findCustomer } from '../customers/repository';
import { type ByteRange, InvalidKeyError, type Storage, StorageNotFoundError, type StoredObject } from '../storage';
import { type Document, type DocumentRow, storageKeyOf, toDocument } from './document';
import { cleanFileName, storedExtension } from './file-name';
import { resolveMimeType } from './file-types';
import { UploadInspector } from './inspect';
import * as repo from './repository';

/** An upload that is stored but has no row yet. */
export interface StoredUpload {
  readonly key: string;
  readonly storage: StorageName;
  readonly storedFileName: string;
  readonly fileName: string;
  readonly mimeType: string;
  readonly size: number;
  readonly sha256: string;
}

export interface DocumentsServiceDeps {
  db: Db;
  storage: Storage;
  config: Config;
  logger: Logger;
}

const FIELD_LIMITS = { category: 100, description: 2000 } as const;

export class DocumentsService {
  private readonly allowedTypes: ReadonlySet<string>;

  constructor(private readonly deps: DocumentsServiceDeps) {
    this.allowedTypes = new Set(deps.config.uploads.allowedTypes);
  }

  async requireCustomer(customerId: number): Promise<void> {
    if (!(await findCustomer(this.deps.db, customerId))) throw customerNotFound(customerId);
  }

  async list(customerId: number): Promise<Document[]> {
    await this.requireCustomer(customerId);
    return (await repo.listDocuments(this.deps.db, customerId)).map(toDocument);
  }

  async get(customerId: number, id: number): Promise<DocumentRow> {
    const row = await repo.findDocument(this.deps.db, customerId, id);
    if (row) return row;
    await this.requireCustomer(customerId);
    throw documentNotFound(id);
  }

  /**
   * Streams an upload into the primary store under a new server-made name, checking it on the way (type, size,
   * content), and returns what the row needs. On any failure nothing of it is kept.
   */
  async store(customerId: number, upload: { stream: Readable; fileName?: string; declaredType?: string }): Promise<StoredUpload> {
    const fileName = cleanFileName(upload.fileName);
    const mimeType = resolveMimeType(upload.declaredType, fileName);
    if (!this.allowedTypes.has(mimeType)) {
      throw new UnsupportedMediaTypeError('FILE_TYPE_NOT_ALLOWED', `Files of type ${mimeType} are not accepted`);
    }
    const storedFileName = `${uuidv7()}${storedExtension(fileName)}`;
    const driver = this.deps.storage.primary;
    const key = driver.name === 's3' ? this.s3Key(customerId, storedFileName) : storedFileName;

    const inspector = new UploadInspector(mimeType, this.deps.config.uploads.maxBytes);
    // Errors either way: a failed check stops the request stream, a dropped request fails the inspector,
    // and the driver sees the failure through the inspector and discards what it stored.
    pipeline(upload.stream, inspector, () => undefined);
    await driver.put(key, inspector, { contentType: mimeType });
    return { key, storage: driver.name, storedFileName, fileName, mimeType, size: inspector.byteCount, sha256: inspector.digest() };
  }

  /** Records a stored upload as a document. When that fails the stored file is removed, so none is orphaned. */
  async create(customerId: number, stored: StoredUpload, fields: Record<string, unknown>): Promise<Document> {
    try {
      const row = await repo.insertDocument(this.deps.db, {
        customerId,
        fileName: stored.fileName,
        filePath: stored.key,
        mimeType: stored.mimeType,
        size: stored.size,
        storedFileName: stored.storedFileName,
        storage: stored.storage,
        sha256: stored.sha256,
        category: textField(fields, 'category'),
        description: textField(fields, 'description'),
      });
      return toDocument(row);
    } catch (err) {
      await this.discard(stored);
      // 23503: the customer was deleted while the file was uploading.
      if ((err as { code?: string }).code === '23503') throw customerNotFound(customerId);
      throw err;
    }
  }

  /** Removes a stored upload that has no row. A failure is logged with the key, so the orphan can be found. */
  async discard(stored: Pick<StoredUpload, 'storage' | 'key'>): Promise<void> {
    try {
      await this.deps.storage.driver(stored.storage).delete(stored.key);
    } catch (err) {
      this.deps.logger.error({ err, storage: stored.storage, key: stored.key }, 'could not remove an upload that has no row');
    }
  }

  /** Opens a document's bytes, whole or one range. */
  async open(row: DocumentRow, range?: ByteRange): Promise<StoredObject> {
    const key = storageKeyOf(row);
    try {
      if (!key) throw new StorageNotFoundError('');
      return await this.deps.storage.driver(row.storage).get(key, range);
    } catch (err) {
      if (!(err instanceof StorageNotFoundError || err instanceof InvalidKeyError)) throw err;
      // A row naming no file, or one no driver may read, is as missing as a file that is gone.
      this.deps.logger.warn({ documentId: row.id, storage: row.storage, key }, 'the file of a document is missing');
      throw err instanceof StorageNotFoundError ? err : new StorageNotFoundError(key ?? '', { cause: err });
    }
  }

  async remove(customerId: number, id: number): Promise<void> {
    const row = await repo.deleteDocument(this.deps.db, customerId, id);
    if (!row) {
      await this.requireCustomer(customerId);
      throw documentNotFound(id);
    }
    await this.removeStoredFiles([row]);
  }

  /**
   * Removes the stored files of rows already deleted, unless another row still names the same file. A store
   * that fails leaves the file behind, logged; the row is gone either way, so no document points to nothing.
   */
  async removeStoredFiles(rows: readonly DocumentRow[]): Promise<void> {
    const queue = [...rows];
    const worker = async () => {
      for (let row = queue.shift(); row; row = queue.shift()) {
        const key = storageKeyOf(row);
        if (!key || !row.stored_file_name) continue;
        try {
          if (await repo.isStoredFileReferenced(this.deps.db, row.storage, row.stored_file_name)) continue;
          await this.deps.storage.driver(row.storage).delete(key);
        } catch (err) {
          this.deps.logger.error({ err, documentId: row.id, storage: row.storage, key }, 'could not remove the file of a deleted document');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(8, rows.length) }, worker));
  }

  private s3Key(customerId: number, storedFileName: string): string {
    const prefix = this.deps.config.storage.s3?.prefix;
    return [prefix, String(customerId), storedFileName].filter(Boolean).join('/');
  }
}

function textField(fields: Record<string, unknown>, name: keyof typeof FIELD_LIMITS): string | null {
  const value = fields[name];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw new BadRequestError('INVALID_FIELD', `${name} must be a single text value`);
  const text = value.trim();
  // Postgres text cannot hold NUL; refused here, it is the client's mistake rather than a failed insert.
  if (text.includes('\u0000')) throw new BadRequestError('INVALID_FIELD', `${name} must not contain NUL characters`);
  if (text.length > FIELD_LIMITS[name]) {
    throw new BadRequestError('INVALID_FIELD', `${name} must be at most ${FIELD_LIMITS[name]} characters`);
  }
  return text || null;
}
