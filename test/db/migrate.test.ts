import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadMigrations, MIGRATIONS_DIR, migrate, splitStatements } from '../../src/db/migrate';
import { createTestDb, type TestDb } from '../helpers/db';
import { LEGACY_SCHEMA } from '../helpers/legacy';

/** Lock contention needs a second connection, which the embedded PGlite (one connection) cannot have. */
const onPostgres = process.env.DATABASE_URL ? test : test.skip;

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

  /**
   * A report of the CRM: ACCESS SHARE on `table` (what blocks an ALTER) for `ms`, on a connection of its own.
   * Resolves once the lock is held; `released` once the report has ended.
   */
  async function holdTable(table: string, ms: number): Promise<{ released: Promise<void> }> {
    const report = await database.openAgain();
    let holding!: () => void;
    const held = new Promise<void>((resolve) => (holding = resolve));
    const released = report
      .transaction(async (tx) => {
        await tx.query(`SELECT count(*) FROM ${table}`);
        holding();
        await new Promise((resolve) => setTimeout(resolve, ms));
      })
      .finally(() => report.close());
    await Promise.race([held, released]);
    return { released };
  }

  test('a fresh database gets the CRM tables and every migration, recorded once', async () => {
    const first = await migrate(database.db);
    expect(first.applied).toEqual((await loadMigrations(MIGRATIONS_DIR)).map((m) => m.name));
    expect(await migrate(database.db)).toEqual({ applied: [], changed: [] });
    const tables = await database.db.query<{ table_name: string }>(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
    );
    expect(tables.map((t) => t.table_name)).toEqual(['customer_documents', 'customers', 'document_file_deletions', 'document_store_migrations']);
  });

  test('the backfill reaches rows with ids up to the INTEGER limit, however sparse', async () => {
    await database.db.exec(LEGACY_SCHEMA);
    await database.db.exec(`
      INSERT INTO customers (name) VALUES ('c');
      INSERT INTO customer_documents (id, customer_id, file_name, file_path)
      VALUES (1, 1, 'a', 'uploads/a.pdf'), (1000000, 1, 'b', 'b.pdf'), (2147483000, 1, 'c', '/x/uploads/c.pdf'),
             (2147483647, 1, 'd', 'uploads/d.pdf');`);
    await migrate(database.db);
    const rows = await database.db.query<{ stored_file_name: string }>('SELECT stored_file_name FROM customer_documents ORDER BY id');
    expect(rows.map((r) => r.stored_file_name)).toEqual(['a.pdf', 'b.pdf', 'c.pdf', 'd.pdf']);
  });

  test('an old CRM moving a file (updating file_path alone) moves its stored name; this service\'s own updates stay', async () => {
    await database.db.exec(LEGACY_SCHEMA);
    await database.db.exec(`INSERT INTO customers (name) VALUES ('c');
      INSERT INTO customer_documents (customer_id, file_name, file_path) VALUES (1, 'a', 'uploads/old.pdf'), (1, 'b', 'uploads/b.pdf');`);
    await migrate(database.db);
    await database.db.exec("UPDATE customer_documents SET file_path = 'uploads/renamed.pdf' WHERE file_name = 'a'");
    await database.db.exec(
      "UPDATE customer_documents SET file_path = 'docs/1/kept.pdf', stored_file_name = 'kept.pdf', storage = 's3' WHERE file_name = 'b'",
    );
    const rows = await database.db.query<{ stored_file_name: string }>('SELECT stored_file_name FROM customer_documents ORDER BY id');
    expect(rows.map((r) => r.stored_file_name)).toEqual(['renamed.pdf', 'kept.pdf']);
  });

  onPostgres('a table lock held longer than the lock timeout delays the upgrade, it does not fail it', async () => {
    await database.db.exec(LEGACY_SCHEMA);
    // Past the lock timeout: several attempts give up before the report ends.
    const report = await holdTable('customer_documents', 2000);
    const migrating = migrate(database.db);
    await report.released;
    expect((await migrating).applied).toContain('002_document_storage_columns.sql');
  });

  onPostgres.each([
    ['a migration', ''],
    ['a no-transaction migration', '-- migrate:no-transaction\n'],
  ])('while %s waits behind a long query, the CRM\'s writes are never held up for a second', async (_kind, header) => {
    await write('001_t.sql', 'CREATE TABLE t (id serial PRIMARY KEY, v text);');
    await migrate(database.db, dir);
    await write('002_alter.sql', `${header}ALTER TABLE t ADD COLUMN IF NOT EXISTS w text;\n`);
    // The ALTER's lock waits for the report, and queues every writer behind it.
    const report = await holdTable('t', 3000);
    const crm = await database.openAgain();
    const migrating = migrate(database.db, dir);
    // The CRM writes all along: the longest any single write waited.
    let longest = 0;
    for (const until = Date.now() + 3500; Date.now() < until; ) {
      const t0 = Date.now();
      await crm.query("INSERT INTO t (v) VALUES ('x')");
      longest = Math.max(longest, Date.now() - t0);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await report.released;
    expect((await migrating).applied).toEqual(['002_alter.sql']);
    expect(longest).toBeGreaterThan(100); // the writes did queue behind the ALTER's waits
    expect(longest).toBeLessThan(1000);
    await crm.close();
  });

  onPostgres('in a no-transaction file, a statement that timed out on its lock is retried alone, not the file', async () => {
    await write('001_t.sql', 'CREATE TABLE t (id int); CREATE TABLE runs (n int);');
    await migrate(database.db, dir);
    // The INSERT stands for an index built CONCURRENTLY: costly to repeat. The ALTER after it waits for a report.
    await write('002_nt.sql', '-- migrate:no-transaction\nINSERT INTO runs VALUES (1);\nALTER TABLE t ADD COLUMN IF NOT EXISTS w text;\n');
    const report = await holdTable('t', 2000);
    const migrating = migrate(database.db, dir);
    await report.released;
    expect((await migrating).applied).toEqual(['002_nt.sql']);
    expect(await database.db.query('SELECT n FROM runs')).toEqual([{ n: 1 }]);
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
