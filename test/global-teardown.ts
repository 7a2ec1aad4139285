import fs from 'node:fs/promises';

export default async function globalTeardown(): Promise<void> {
  if (process.env.TEST_PGLITE_TEMPLATE) await fs.rm(process.env.TEST_PGLITE_TEMPLATE, { force: true });
}
