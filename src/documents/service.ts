import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream';
import type { Config, StorageName } from '../config';
import { type Db, LIST_PAGE, type Page } from '../db';
import { customerNotFound, DatabaseUnavailableError, documentNotFound, UnsupportedMediaTypeError } from '../errors';
import type { Logger } from '../logger';
import { findCustomer } from '../customers/repository';
import { type ByteRange, InvalidKeyError, type Storage, StorageNotFoundError, type StoredObject } from '../storage';
import type { Tasks } from '../tasks';
import { enqueueFileDeletions, type FileDeletions } from './deletions';
import { type Document, type DocumentRow, namesSameFile, s3KeyFor, storageKeyOf, storedFilesOf, toDocument } from './document';
import { textField } from './fields';
import { cleanFileName, newStoredFileName } from './file-name';
import { resolveMimeType } from './file-types';
import { UploadInspector } from './inspect';
import { assertOwnFile } from './legacy-path';
import { placeUpload } from './placement';
import * as repo from './repository';

/** An upload that is stored but has no row yet. */
export interface StoredUpload {
  readonly key: string;
  readonly storage: StorageName;
  readonly pendingStorage: StorageName | null;
  readonly storedFileName: string;
  readonly fileName: string;
  readonly mimeType: string;
  readonly size: number;
  readonly sha256: string;
}

/** A file on its way in, as the form delivers it. */
export interface NewUpload {
  readonly stream: Readable;
  readonly fileName?: string;
  readonly declaredType?: string;
  /** What the file cannot exceed (the request's Content-Length), when known: how much memory to keep for it. */
  readonly sizeAtMost?: number;
}

export interface DocumentsServiceDeps {
  db: Db;
  storage: Storage;
  config: Config;
  logger: Logger;
  deletions: FileDeletions;
  tasks: Tasks;
}

export class DocumentsService {
  private readonly allowedTypes: ReadonlySet<string>;
  /** Stored uploads whose row may or may not exist: the connection broke during their INSERT. */
  private readonly unconfirmed: { customerId: number; stored: StoredUpload }[] = [];

  constructor(private readonly deps: DocumentsServiceDeps) {
    this.allowedTypes = new Set(deps.config.uploads.allowedTypes);
  }

  async requireCustomer(customerId: number): Promise<void> {
    if (!(await findCustomer(this.deps.db, customerId))) throw customerNotFound(customerId);
  }

  /** How many documents wait to move to another store (kept on local disk during an S3 outage). */
  async pendingMoves(): Promise<number> {
    const [row] = await this.deps.db.query<{ n: string }>(
      'SELECT count(*) AS n FROM customer_documents WHERE pending_storage IS NOT NULL',
    );
    return Number(row.n);
  }

  /** A customer's documents, newest first, in pages of `pageSize`. The first page checks the customer. */
  async *list(customerId: number, pageSize = LIST_PAGE): AsyncGenerator<Page<Document>> {
    await this.requireCustomer(customerId);
    for (let after: repo.DocumentsCursor | undefined; ; ) {
      const { rows, next } = await repo.listDocumentsPage(this.deps.db, customerId, after, pageSize);
      yield { items: rows.map(toDocument), more: next !== undefined };
      if (!next) return;
      after = next;
    }
  }

  async get(customerId: number, id: number): Promise<DocumentRow> {
    const row = await repo.findDocument(this.deps.db, customerId, id);
    if (row) return row;
    await this.requireCustomer(customerId);
    throw documentNotFound(id);
  }

  /**
   * Streams an upload into the primary store under a new server-made name, checking it on the way (type, size,
   * content), and returns what the row needs. On any failure nothing of it is kept. `customerRefusal`: the lookup
   * of the customer, running meanwhile (see upload.ts); a refusal fails the upload as soon as it comes.
   */
  store(
    customerId: number,
    upload: NewUpload,
    customerRefusal: Promise<unknown>,
  ): Promise<StoredUpload> {
    return this.deps.tasks.track(this.storeUpload(customerId, upload, customerRefusal));
  }

  private async storeUpload(
    customerId: number,
    upload: NewUpload,
    customerRefusal: Promise<unknown>,
  ): Promise<StoredUpload> {
    const fileName = cleanFileName(upload.fileName);
    const mimeType = resolveMimeType(upload.declaredType, fileName);
    if (!this.allowedTypes.has(mimeType)) {
      throw new UnsupportedMediaTypeError('FILE_TYPE_NOT_ALLOWED', `Files of type ${mimeType} are not accepted`);
    }
    const storedFileName = newStoredFileName(fileName);
    const inspector = new UploadInspector(mimeType, this.deps.config.uploads.maxBytes);
    const refusal = customerRefusal.then((err) => {
      if (err) inspector.destroy(err as Error);
      return err;
    });
    // Errors either way: a failed check stops the request stream, a dropped request fails the inspector,
    // and the stores see the failure through the inspector and discard what they received.
    pipeline(upload.stream, inspector, () => undefined);
    const placed = await placeUpload(
      this.deps.storage,
      inspector,
      { storedFileName, s3Key: this.s3Key(customerId, storedFileName), contentType: mimeType },
      {
        fallback: this.deps.config.reliability.s3Fallback,
        logger: this.deps.logger,
        sizeAtMost: upload.sizeAtMost,
        leftover: (key) => this.discardLater({ storage: 's3', key, storedFileName }),
      },
    );
    // A small file can be stored before the lookup answers.
    const refused = await refusal;
    if (refused) {
      await this.discardUpload(customerId, { ...placed, storedFileName });
      throw refused;
    }
    return { ...placed, storedFileName, fileName, mimeType, size: inspector.byteCount, sha256: inspector.digest() };
  }

  /** Records a stored upload as a document. When that fails the stored file is removed, so none is orphaned. */
  create(customerId: number, stored: StoredUpload, fields: Record<string, unknown>): Promise<Document> {
    return this.deps.tasks.track(this.record(customerId, stored, fields));
  }

  private async record(customerId: number, stored: StoredUpload, fields: Record<string, unknown>): Promise<Document> {
    try {
      const row = await repo.insertDocument(this.deps.db, {
        customerId,
        fileName: stored.fileName,
        filePath: stored.key,
        mimeType: stored.mimeType,
        size: stored.size,
        storedFileName: stored.storedFileName,
        storage: stored.storage,
        pendingStorage: stored.pendingStorage,
        sha256: stored.sha256,
        category: textField(fields, 'category'),
        description: textField(fields, 'description'),
      });
      return toDocument(row);
    } catch (err) {
      if (err instanceof DatabaseUnavailableError && err.maybeApplied) {
        // The INSERT may have committed before the connection broke: removing the file now could leave a row
        // without it. It is removed once the database answers and no row names it (settleUnconfirmed).
        this.unconfirmed.push({ customerId, stored });
        this.deps.logger.warn({ storage: stored.storage, key: stored.key }, 'an upload may or may not have been recorded; its file is kept until the database tells');
        throw err;
      }
      await this.discardUpload(customerId, stored);
      // 23503: the customer was deleted while the file was uploading.
      if ((err as { code?: string }).code === '23503') throw customerNotFound(customerId);
      throw err;
    }
  }

  /**
   * Settles uploads whose INSERT had an unknown outcome: a file that a row names is kept, any other is removed.
   * Those still unknown (the database still away) wait for the next run. Held in memory: after a crash such a file
   * is an orphan, never served, as after any crash between storing a file and recording it.
   *
   * "No row names it" is read only once no write to the table is under way: an INSERT whose connection broke can
   * still be running in Postgres (waiting for a lock the CRM holds, say) and commit after a plain read, naming a
   * file removed meanwhile. A write that holds on past the wait leaves the uploads for the next run.
   */
  async settleUnconfirmed(): Promise<{ kept: number; removed: number }> {
    const pending = this.unconfirmed.splice(0);
    if (pending.length === 0) return { kept: 0, removed: 0 };
    let named: boolean[];
    try {
      named = await this.deps.db.transaction(async (tx) => {
        await repo.awaitDocumentWriters(tx);
        const found: boolean[] = [];
        for (const { stored } of pending) found.push(await repo.isStoredFileReferenced(tx, stored));
        return found;
      });
    } catch {
      this.unconfirmed.push(...pending);
      return { kept: 0, removed: 0 };
    }
    const orphans = pending.filter((_upload, i) => !named[i]);
    for (const { customerId, stored } of orphans) await this.discardUpload(customerId, stored);
    return { kept: pending.length - orphans.length, removed: orphans.length };
  }

  /**
   * discard, and for an upload kept on local disk because S3 failed it, the S3 key too, queued: S3 may have stored
   * it without answering (placement.ts), and no sync will ever write over it now.
   */
  private async discardUpload(customerId: number, stored: Pick<StoredUpload, 'storage' | 'key' | 'storedFileName' | 'pendingStorage'>): Promise<void> {
    await this.discard(stored);
    if (stored.pendingStorage === 's3') await this.discardLater({ storage: 's3', key: this.s3Key(customerId, stored.storedFileName), storedFileName: stored.storedFileName });
  }

  /** Removes a stored upload that has no row; if its store fails, the deletion queue removes it later. */
  async discard(stored: Pick<StoredUpload, 'storage' | 'key'> & { storedFileName?: string }): Promise<void> {
    try {
      await this.deps.storage.driver(stored.storage).delete(stored.key);
    } catch (err) {
      this.deps.logger.warn({ err, storage: stored.storage, key: stored.key }, 'could not remove an upload that has no row; it is queued');
      await this.discardLater(stored);
    }
  }

  /**
   * Queues a stored upload that has no row for the deletion queue, whose retries run until its store answers and
   * check first that no row names it. Only if the database fails too is it left, logged with its key so that the
   * orphan can be found (storage:verify finds it as well).
   */
  async discardLater(stored: Pick<StoredUpload, 'storage' | 'key'> & { storedFileName?: string }): Promise<void> {
    const file = { storage: stored.storage, key: stored.key, storedFileName: stored.storedFileName ?? null, documentId: null };
    try {
      await enqueueFileDeletions(this.deps.db, [file]);
    } catch (err) {
      this.deps.logger.error({ err, storage: stored.storage, key: stored.key }, 'could not remove an upload that has no row');
    }
  }

  /**
   * Opens a document's bytes, whole or one range. A row read just before the sync job moved its file to S3 names
   * the local copy the job then removes: when the file is missing, the row is read again and a new location tried.
   */
  async open(row: DocumentRow, range?: ByteRange, signal?: AbortSignal): Promise<StoredObject> {
    try {
      return await this.openAt(row, range, signal);
    } catch (err) {
      if (!(err instanceof StorageNotFoundError)) throw err;
      const now = await repo.findDocument(this.deps.db, row.customer_id, row.id);
      // Deleted meanwhile, or its customer: its file went with it (at once on S3; on local disk an open file outlives
      // the delete). Answered as a lookup made now would be.
      if (!now) {
        await this.requireCustomer(row.customer_id);
        throw documentNotFound(row.id);
      }
      if (namesSameFile(now, row)) {
        // A row naming no file, or one no driver may read, is as missing as a file that is gone.
        this.deps.logger.warn({ documentId: row.id, storage: row.storage, key: storageKeyOf(row) }, 'the file of a document is missing');
        throw err;
      }
      return this.openAt(now, range, signal);
    }
  }

  private async openAt(row: DocumentRow, range?: ByteRange, signal?: AbortSignal): Promise<StoredObject> {
    const key = storageKeyOf(row);
    try {
      if (!key) throw new StorageNotFoundError('');
      await assertOwnFile(this.deps.storage.local, row);
      return await this.deps.storage.driver(row.storage).get(key, range, { signal });
    } catch (err) {
      if (err instanceof InvalidKeyError) throw new StorageNotFoundError(key ?? '', { cause: err });
      throw err;
    }
  }

  /**
   * Deletes the row and queues its stored file in one transaction, then removes the file without keeping the
   * client waiting: a store that fails or hangs leaves the file queued for the background job, never a stranded file.
   */
  async remove(customerId: number, id: number): Promise<void> {
    const queued = await this.deps.db.transaction(async (tx) => {
      const row = await repo.deleteDocument(tx, customerId, id);
      return row && enqueueFileDeletions(tx, this.storedFilesOf([row]));
    });
    if (!queued) {
      await this.requireCustomer(customerId);
      throw documentNotFound(id);
    }
    this.removeSoon(queued);
  }

  /** The stored files of deleted rows, to queue in the transaction that deletes them. */
  storedFilesOf(rows: readonly DocumentRow[]) {
    return rows.flatMap((row) => storedFilesOf(row, this.deps.config.storage.s3));
  }

  /** Removes queued files after their rows' transaction committed, in the background. */
  removeSoon(queueIds: readonly string[]): void {
    if (queueIds.length > 0) this.deps.tasks.run(() => this.deps.deletions.run(queueIds));
  }

  private s3Key(customerId: number, storedFileName: string): string {
    return s3KeyFor(this.deps.config.storage.s3?.prefix, customerId, storedFileName);
  }
}
