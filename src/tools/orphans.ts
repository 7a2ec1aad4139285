import type { StorageName } from '../config';
import type { Queryable } from '../db';
import { customerOfS3Key, type DocumentRow, s3KeyFor, storageKeyOf } from '../documents/document';
import type { Listed } from './listings';

/** What a listed file is to the rows that may name it. */
export type Claim =
  /** A row's file, where the row reads it (or, on S3, the copy a local row's move has made or is making). */
  | 'claimed'
  /** No row's file, but a row names a file of this name in this place (see claimOf). */
  | 'named'
  /** No row's. */
  | undefined;

export type ClaimingRow = Pick<DocumentRow, 'customer_id' | 'file_path' | 'storage' | 'stored_file_name'>;

/**
 * The stored names a row naming this file could have: every ending of its key after a '/', and the key itself. A
 * stored name may hold folders (an old CRM's file named by its folder, README "Upgrading"), and an S3 key puts the
 * prefix and customer before it, whatever prefix the object was written under: its base name alone would miss the
 * row of `prefix/7/1/notes.txt`, named `1/notes.txt`, and report its live object as no row's.
 */
export function namesIn(key: string): string[] {
  const names = [key];
  for (let at = key.indexOf('/'); at !== -1; at = key.indexOf('/', at + 1)) names.push(key.slice(at + 1));
  return names;
}

/** The rows whose stored name is one of `names`, by that name. */
export async function rowsNaming(db: Queryable, names: readonly string[]): Promise<Map<string, ClaimingRow[]>> {
  const rows = await db.query<ClaimingRow>(
    'SELECT customer_id, file_path, storage, stored_file_name FROM customer_documents WHERE stored_file_name = ANY($1)',
    [[...new Set(names)]],
  );
  const byName = new Map<string, ClaimingRow[]>();
  for (const row of rows) {
    const name = row.stored_file_name!;
    const named = byName.get(name);
    if (named) named.push(row);
    else byName.set(name, [row]);
  }
  return byName;
}

/**
 * Whether the rows naming a listed file (`byName`: rowsNaming of at least its namesIn) claim it.
 *
 * Named, not claimed: on local disk, a file any row names (a copy kept by --keep-local, an old file in the wrong
 * place), since local files share one folder and the old CRM's rows shared files. On S3, an object in the folder of
 * the customer of a row naming it: not one of another customer's, as when two customers' old rows shared a file,
 * each moved to its own folder, and one customer's was deleted. An object not laid out by customer is kept too.
 */
export function claimOf(storage: StorageName, file: Listed, byName: ReadonlyMap<string, ClaimingRow[]>, s3Prefix: string | undefined): Claim {
  let named = false;
  for (const name of namesIn(file.key)) {
    for (const row of byName.get(name) ?? []) {
      if (row.storage === storage && storageKeyOf(row) === file.key) return 'claimed';
      // A local document's copy on S3 may exist before its row switches (a migration or sync under way, or cut
      // short and about to be resumed).
      if (storage === 's3' && row.storage === 'local' && s3KeyFor(s3Prefix, row.customer_id, name) === file.key) return 'claimed';
      if (storage === 'local') named = true;
      else {
        const customer = customerOfS3Key(file.key, name);
        if (customer === undefined || customer === Number(row.customer_id)) named = true;
      }
    }
  }
  return named ? 'named' : undefined;
}
