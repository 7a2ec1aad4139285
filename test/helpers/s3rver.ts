import fs from 'node:fs/promises';
import S3rver, { type S3rverOptions } from 's3rver';

/**
 * s3rver, as the tests and the bench run it. s3rver 3.7.1 (its last release) stores a key a/b/c as the file c in
 * the directory a/b, and a delete removes the directory once it is empty. A put under the same prefix at that moment
 * has made the directory but not yet opened its file: the open fails with ENOENT, s3rver does not listen for the
 * error (an uncaught exception in its process), and still answers 200 with the object missing. S3 has no
 * directories, so nothing a client sees depends on their removal: here a delete removes the object's own files and
 * leaves the directory. The same store code serves everything else. (Two deletes racing on the rmdir is
 * jamhall/s3rver#788, still open.)
 *
 * A listing that stops short of the objects there (more than MaxKeys) fails with InternalError: s3rver makes its
 * continuation token with DES, which OpenSSL 3 (Node 17 and later) keeps in its legacy provider. So /ready, which
 * lists one key, answers 'failing' on s3rver once two objects are stored: tests that need it keep to one object.
 */
export function createS3rver(options: S3rverOptions): S3rver {
  const server = new S3rver(options);
  const store = server.store;
  store.deleteObject = async (bucket, key) => {
    const files = ['object', 'object.md5', 'metadata.json'].map((resource) => store.getResourcePath(bucket, key, resource));
    await Promise.all(files.map((file) => fs.rm(file, { force: true })));
  };
  return server;
}
