import { DatabaseUnavailableError } from '../../src/errors';
import { isUnavailable } from '../../src/db/pg';
import { createTestDb, type TestDb } from '../helpers/db';

describe('Db', () => {
  let database: TestDb;
  beforeAll(async () => {
    database = await createTestDb();
    await database.db.exec('CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)');
  });
  afterAll(() => database.close());

  test('query takes parameters and returns rows', async () => {
    await database.db.query('INSERT INTO items (name) VALUES ($1), ($2)', ['a', 'b']);
    expect(await database.db.query('SELECT name FROM items ORDER BY id')).toEqual([{ name: 'a' }, { name: 'b' }]);
  });

  test('a transaction commits together or not at all, and carries the original error', async () => {
    const boom = new Error('boom');
    await expect(
      database.db.transaction(async (tx) => {
        await tx.query("INSERT INTO items (name) VALUES ('rolled back')");
        throw boom;
      }),
    ).rejects.toBe(boom);
    await database.db.transaction(async (tx) => {
      await tx.query("INSERT INTO items (name) VALUES ('c')");
      await tx.query("INSERT INTO items (name) VALUES ('d')");
    });
    const names = (await database.db.query<{ name: string }>('SELECT name FROM items ORDER BY id')).map((r) => r.name);
    expect(names).toEqual(['a', 'b', 'c', 'd']);
  });

  test('a statement outside a transaction never sees its uncommitted rows', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let inserted!: () => void;
    const pending = new Promise<void>((r) => (inserted = r));
    const tx = database.db.transaction(async (q) => {
      await q.query("INSERT INTO items (name) VALUES ('pending')");
      inserted();
      await held;
    });
    await pending;
    let readDone = false;
    const seen = database.db
      .query<{ n: number }>("SELECT count(*)::int AS n FROM items WHERE name = 'pending'")
      .then(([row]) => {
        readDone = true;
        return row.n;
      });
    if (database.kind === 'pglite') {
      // One connection: the read waits until the transaction has ended, and then sees the committed row.
      await new Promise((r) => setTimeout(r, 100));
      expect(readDone).toBe(false);
      release();
      await tx;
      expect(await seen).toBe(1);
    } else {
      // Its own connection: the read answers while the transaction is still open, and does not see its row.
      expect(await seen).toBe(0);
      release();
      await tx;
    }
  });

  test('withLock runs holders of the same lock one after another', async () => {
    const other = await database.openAgain();
    const events: string[] = [];
    const hold = (db: typeof other, name: string) =>
      db.withLock('test-lock', async () => {
        events.push(`${name} in`);
        await new Promise((r) => setTimeout(r, 300));
        events.push(`${name} out`);
      });
    await Promise.all([hold(database.db, 'a'), hold(other, 'b')]);
    expect([events.slice(0, 2), events.slice(2)]).toEqual([
      [expect.stringMatching(/in$/), expect.stringMatching(/out$/)],
      [expect.stringMatching(/in$/), expect.stringMatching(/out$/)],
    ]);
    expect(events[0][0]).toBe(events[1][0]);
  });

  (process.env.DATABASE_URL ? test : test.skip)(
    'a lock lost with its connection says so: the holder can stop instead of going on unguarded (Postgres)',
    async () => {
      const other = await database.openAgain();
      try {
        const seen = await database.db.withLock('test-lost-lock', async (_session, lost) => {
          expect(lost.aborted).toBe(false);
          // As a failover or an administrator would: the backend that holds the lock ends.
          await other.query(
            `SELECT pg_terminate_backend(l.pid) FROM pg_locks l
              WHERE l.locktype = 'advisory' AND l.objid = (hashtextextended('test-lost-lock', 0) & 4294967295)::oid
                AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
          );
          for (let i = 0; i < 100 && !lost.aborted; i++) await new Promise((r) => setTimeout(r, 50));
          return String((lost.reason as Error | undefined)?.message);
        });
        expect(seen).toBe('the lock test-lost-lock was lost with its database connection');
        // The lock is free again, for the next holder.
        expect(await other.tryWithLock('test-lost-lock', async () => 'taken')).toBe('taken');
      } finally {
        await other.close();
      }
    },
  );

  test('ping answers true while the database is there', async () => {
    expect(await database.db.ping(2000)).toBe(true);
  });
});

describe('isUnavailable', () => {
  test.each([
    [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }), true],
    [Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }), true],
    [Object.assign(new Error('the database system is starting up'), { code: '57P03' }), true],
    [new Error('Connection terminated unexpectedly'), true],
    [new Error('timeout exceeded when trying to connect'), true],
    [Object.assign(new Error('duplicate key'), { code: '23505' }), false],
    [Object.assign(new Error('syntax error'), { code: '42601' }), false],
  ])('%s: %s', (err, expected) => {
    expect(isUnavailable(err)).toBe(expected);
  });

  test('a closed database reports DatabaseUnavailableError', async () => {
    const database = await createTestDb();
    await database.db.close();
    await expect(database.db.query('SELECT 1')).rejects.toBeInstanceOf(DatabaseUnavailableError);
    expect(await database.db.ping(500)).toBe(false);
    await database.close();
  });
});
