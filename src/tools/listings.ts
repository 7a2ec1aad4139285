import fs from 'node:fs/promises';
import path from 'node:path';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { StorageUnavailableError } from '../storage';

/** A stored file or object, as a listing of its store gives it. */
export interface Listed {
  key: string;
  modified: Date;
}

/** Files under UPLOAD_DIR but those in `skip`, streamed (never the whole listing in memory). */
export async function* walkLocal(root: string, skip: ReadonlySet<string>, dir = root): AsyncGenerator<Listed> {
  let handle;
  try {
    handle = await fs.opendir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  for await (const entry of handle) {
    const full = path.join(dir, entry.name);
    // Dot-names are no key's (temporary uploads in .tmp, swept by the service; .gitkeep; a volume's lost+found
    // is not a dot-name but holds no keys either, and is left to the file system).
    if (entry.name.startsWith('.') || (dir === root && entry.name === 'lost+found') || skip.has(full)) continue;
    if (entry.isDirectory()) {
      yield* walkLocal(root, skip, full);
    } else if (entry.isFile()) {
      // Gone since the folder was read (a move to S3 or a delete, while the service runs): nothing to list.
      const stats = await fs.stat(full).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      });
      if (stats) yield { key: path.relative(root, full).split(path.sep).join('/'), modified: stats.mtime };
    }
  }
}

/** Objects under the prefix, a page (1,000) at a time. */
export async function* listBucket(client: S3Client, bucket: string, prefix: string): AsyncGenerator<Listed> {
  let token: string | undefined;
  do {
    const page = await client
      .send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix ? `${prefix}/` : undefined, ContinuationToken: token }))
      .catch((err: unknown) => {
        // A store that does not answer, or refuses the credentials, is a failure the tool names in a line, not a bug.
        throw new StorageUnavailableError(err);
      });
    for (const o of page.Contents ?? []) if (o.Key) yield { key: o.Key, modified: o.LastModified ?? new Date() };
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
}
