import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadMigrations, MIGRATIONS_DIR, migrate, splitStatements } from '../../src/db/migrate';
import { createTestDb, type TestDb } from '../helpers/db';

describe('migrate', () => {
  let database: TestDb;
  let dir: string;
  beforeEach(async () => {
    database = await createTestDb();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'migrations-'));
  });
  afterEach(async () => {
    await database.close();
    await fs.rm(dir, { recursive: true, force: true });
  });
  const write = (name: string, sql: string) => fs.writeFile(path.join(dir, name), sql);

  test('a fresh database gets the CRM tables and every migration, recorded once', async () => {
    const first = await migrate(database.db);
    expect(first.applied).toEqual((await loadMigrations(MIGRATIONS_DIR)).map((m) => m.name));
    expect(await migrate(database.db)).toEqual({ applied: [], changed: [] });
    const tables = await database.db.query<{ table_name: string }>(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
    );
    expect(tables.map((t) => t.table_name)).toEqual(['customer_documents', 'customers', 'document_store_migrations']);
  });

  test('a migration that fails leaves nothing behind and is retried by the next run', async () => {
    await write('001_one.sql', 'CREATE TABLE one (id int);');
    await write('002_two.sql', 'CREATE TABLE two (id int); INSERT INTO two VALUES (1); SELECT 1/0;');
    await expect(migrate(database.db, dir)).rejects.toThrow(/division by zero/);
    const tables = await database.db.query("SELECT 1 FROM information_schema.tables WHERE table_name = 'two'");
    expect(tables).toEqual([]);
    const history = await database.db.query<{ name: string }>('SELECT name FROM document_store_migrations');
    expect(history.map((h) => h.name)).toEqual(['001_one.sql']);

    await write('002_two.sql', 'CREATE TABLE two (id int); INSERT INTO two VALUES (1);');
    expect((await migrate(database.db, dir)).applied).toEqual(['002_two.sql']);
  });

  test('an applied file that was edited is reported, never re-run', async () => {
    await write('001_one.sql', 'CREATE TABLE one (id int);');
    await migrate(database.db, dir);
    await write('001_one.sql', 'CREATE TABLE one (id int); -- edited');
    expect(await migrate(database.db, dir)).toEqual({ applied: [], changed: ['001_one.sql'] });
  });

  test('a no-transaction file runs statement by statement (CREATE INDEX CONCURRENTLY)', async () => {
    await write('001_t.sql', 'CREATE TABLE t (id int, v text);');
    await write('002_idx.sql', '-- migrate:no-transaction\n-- a comment; with a semicolon\nCREATE INDEX CONCURRENTLY t_v ON t (v);\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n');
    expect((await migrate(database.db, dir)).applied).toEqual(['001_t.sql', '002_idx.sql']);
    const idx = await database.db.query("SELECT 1 FROM pg_indexes WHERE tablename = 't'");
    expect(idx).toHaveLength(2);
  });

  test('a file not named NNN_name.sql is refused', async () => {
    await write('one.sql', 'SELECT 1;');
    await expect(migrate(database.db, dir)).rejects.toThrow(/must be named like/);
  });
});

test('splitStatements keeps statements whole and drops comment lines', () => {
  expect(splitStatements('-- migrate:no-transaction\nDROP INDEX x;\nCREATE INDEX y\n  ON t (a);\n\nCALL p(5);  \n')).toEqual([
    'DROP INDEX x',
    'CREATE INDEX y\n  ON t (a)',
    'CALL p(5)',
  ]);
});
