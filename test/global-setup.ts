import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';

/**
 * Every PGlite database the tests make (all of them without DATABASE_URL, the embedded database's own tests with
 * it) starts from one dump of a new cluster, made here once for the run: making a cluster takes PGlite 3–5 s of
 * CPU, loading the dump under one (test/helpers/db.ts). The dump is of the cluster as PGlite makes it, before any
 * migration, so every test still sees a new database.
 */
export default async function globalSetup(): Promise<void> {
  const pglite = await PGlite.create();
  const dump = await pglite.dumpDataDir('none');
  await pglite.close();
  const file = path.join(os.tmpdir(), `crm-docs-pglite-template-${process.pid}.tar`);
  await fs.writeFile(file, Buffer.from(await dump.arrayBuffer()));
  // Test workers start after this, with this environment.
  process.env.TEST_PGLITE_TEMPLATE = file;
}
