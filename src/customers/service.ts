import { z } from 'zod';
import { type Db, LIST_PAGE, type Page } from '../db';
import { BadRequestError, customerNotFound } from '../errors';
import type { DocumentsService } from '../documents/service';
import { enqueueFileDeletions } from '../documents/deletions';
import { deleteCustomerDocuments } from '../documents/repository';
import * as repo from './repository';

export interface Customer {
  id: number;
  name: string;
  email: string | null;
  createdAt: Date | null;
}

const toCustomer = (row: repo.CustomerRow): Customer => ({
  id: row.id,
  name: row.name,
  email: row.email,
  createdAt: row.created_at,
});

const newCustomer = z.object({
  name: z
    // A name of the wrong type is not a missing one: say which, so the frontend's bug is found where it is.
    .string({ error: (issue) => (issue.input == null ? 'name is required' : 'name must be a string') })
    .trim()
    .min(1, 'name must not be empty')
    .max(255, 'name must be at most 255 characters')
    .refine((name) => !/\p{Cc}/u.test(name), 'name must not contain control characters')
    // Half of a surrogate pair: the database would store U+FFFD in its place, another name than the one sent.
    .refine((name) => !/\p{Cs}/u.test(name), 'name is not valid Unicode'),
  // Trimmed, and empty means none: a form's optional input left empty sends "", not null or nothing.
  email: z
    .preprocess(
      (v) => (typeof v === 'string' ? v.trim() || null : v),
      z.email({ message: 'email must be an e-mail address' }).max(255, 'email must be at most 255 characters').nullish(),
    )
    .transform((v) => v ?? null),
});

export class CustomersService {
  constructor(private readonly deps: { db: Db; documents: DocumentsService }) {}

  async create(input: unknown): Promise<Customer> {
    const parsed = newCustomer.safeParse(input ?? {});
    if (!parsed.success) {
      throw new BadRequestError('VALIDATION_FAILED', parsed.error.issues.map((i) => i.message).join('; '));
    }
    return toCustomer(await repo.insertCustomer(this.deps.db, parsed.data.name, parsed.data.email));
  }

  /** Every customer, in pages of `pageSize`: a table of any size is listed in flat memory. */
  async *list(pageSize = LIST_PAGE): AsyncGenerator<Page<Customer>> {
    for (let after = 0; ; ) {
      const { rows, more } = await repo.listCustomersPage(this.deps.db, after, pageSize);
      yield { items: rows.map(toCustomer), more };
      if (!more) return;
      after = rows[rows.length - 1].id;
    }
  }

  async get(id: number): Promise<Customer> {
    const row = await repo.findCustomer(this.deps.db, id);
    if (!row) throw customerNotFound(id);
    return toCustomer(row);
  }

  /** Deletes the customer and its documents, queueing their stored files, in one transaction; then the files. */
  async remove(id: number): Promise<void> {
    const { documents } = this.deps;
    const queued = await this.deps.db.transaction(async (tx) => {
      if (!(await repo.lockCustomer(tx, id))) throw customerNotFound(id);
      const rows = await deleteCustomerDocuments(tx, id);
      const ids = await enqueueFileDeletions(tx, documents.storedFilesOf(rows));
      await repo.deleteCustomer(tx, id);
      return ids;
    });
    documents.removeSoon(queued);
  }
}
