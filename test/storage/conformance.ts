import { PassThrough, Readable } from 'node:stream';
import {
  InvalidKeyError,
  RangeNotSatisfiableError,
  type StorageDriver,
  StorageNotFoundError,
} from '../../src/storage/driver';
import { chunked, random, readAll, sha256 } from '../helpers/streams';

export interface DriverFixture {
  driver: StorageDriver;
  cleanup(): Promise<void>;
}

const put = (driver: StorageDriver, key: string, data: Buffer) =>
  driver.put(key, chunked(data), { contentType: 'application/octet-stream' });

/**
 * The contract of StorageDriver (src/storage/driver.ts), run unchanged against every driver, each against the
 * real thing: a directory on disk, an S3 HTTP server. A driver that drifts from another fails here.
 */
export function describeStorageDriver(name: string, makeFixture: () => Promise<DriverFixture>): void {
  describe(`StorageDriver conformance: ${name}`, () => {
    let fixture: DriverFixture;
    let driver: StorageDriver;
    let n = 0;
    const key = (suffix = 'bin') => `conformance/${Date.now()}-${++n}.${suffix}`;

    beforeAll(async () => {
      fixture = await makeFixture();
      driver = fixture.driver;
    });
    afterAll(() => fixture?.cleanup());

    test('check resolves while the store can be reached and written', async () => {
      await expect(driver.check()).resolves.toBeUndefined();
    });

    test('put then get returns the same bytes, and stat their size', async () => {
      const k = key();
      const data = random(300_000);
      await put(driver, k, data);
      const obj = await driver.get(k);
      expect(obj.size).toBe(data.length);
      expect(obj.range).toBeUndefined();
      expect((await readAll(obj.body)).equals(data)).toBe(true);
      expect(await driver.stat(k)).toEqual({ size: data.length });
    });

    test('an empty file round-trips, and any range of it is unsatisfiable', async () => {
      const k = key();
      await put(driver, k, Buffer.alloc(0));
      expect(await driver.stat(k)).toEqual({ size: 0 });
      const obj = await driver.get(k);
      expect((await readAll(obj.body)).length).toBe(0);
      await expect(driver.get(k, { start: 0 })).rejects.toMatchObject({ code: 'RANGE_NOT_SATISFIABLE', size: 0 });
    });

    describe('ranges, both ends inclusive', () => {
      const data = Buffer.from('0123456789abcdefghij'); // 20 bytes
      let k: string;
      beforeAll(async () => {
        k = key('txt');
        await put(driver, k, data);
      });
      const read = async (range: Parameters<StorageDriver['get']>[1]) => {
        const obj = await driver.get(k, range);
        return { text: (await readAll(obj.body)).toString(), size: obj.size, range: obj.range };
      };

      test('start-end', async () => {
        expect(await read({ start: 2, end: 5 })).toEqual({ text: '2345', size: 20, range: { start: 2, end: 5 } });
      });
      test('a single byte', async () => {
        expect(await read({ start: 0, end: 0 })).toEqual({ text: '0', size: 20, range: { start: 0, end: 0 } });
      });
      test('open-ended', async () => {
        expect(await read({ start: 15 })).toEqual({ text: 'fghij', size: 20, range: { start: 15, end: 19 } });
      });
      test('an end past the last byte is clamped', async () => {
        expect(await read({ start: 18, end: 1000 })).toEqual({ text: 'ij', size: 20, range: { start: 18, end: 19 } });
      });
      test('suffix: the last N bytes', async () => {
        expect(await read({ suffix: 3 })).toEqual({ text: 'hij', size: 20, range: { start: 17, end: 19 } });
      });
      test('a suffix longer than the file is the whole file', async () => {
        expect(await read({ suffix: 500 })).toEqual({ text: data.toString(), size: 20, range: { start: 0, end: 19 } });
      });
      test('a start at or past the end is unsatisfiable and names the size', async () => {
        const err = await driver.get(k, { start: 20 }).catch((e) => e);
        expect(err).toBeInstanceOf(RangeNotSatisfiableError);
        expect(err.size).toBe(20);
      });
      test('a zero-length suffix is unsatisfiable', async () => {
        await expect(driver.get(k, { suffix: 0 })).rejects.toMatchObject({ code: 'RANGE_NOT_SATISFIABLE', size: 20 });
      });
    });

    test('a missing key: get and stat throw StorageNotFoundError, delete does not throw', async () => {
      const k = key();
      await expect(driver.get(k)).rejects.toBeInstanceOf(StorageNotFoundError);
      await expect(driver.get(k, { start: 0, end: 1 })).rejects.toBeInstanceOf(StorageNotFoundError);
      await expect(driver.get(k, { suffix: 1 })).rejects.toBeInstanceOf(StorageNotFoundError);
      await expect(driver.stat(k)).rejects.toBeInstanceOf(StorageNotFoundError);
      await expect(driver.delete(k)).resolves.toBeUndefined();
    });

    test('delete removes the object, and deleting again is fine', async () => {
      const k = key();
      await put(driver, k, random(10));
      await driver.delete(k);
      await expect(driver.stat(k)).rejects.toBeInstanceOf(StorageNotFoundError);
      await expect(driver.delete(k)).resolves.toBeUndefined();
    });

    test('a file of several multipart parts, streamed in small chunks', async () => {
      const k = key();
      const data = random(12 * 1024 * 1024 + 12345); // three parts of 5 MiB
      await driver.put(k, chunked(data, 16 * 1024), { contentType: 'application/pdf' });
      expect(await driver.stat(k)).toEqual({ size: data.length });
      expect(sha256(await readAll((await driver.get(k)).body))).toBe(sha256(data));
      const tail = await driver.get(k, { start: data.length - 1000 });
      expect((await readAll(tail.body)).equals(data.subarray(data.length - 1000))).toBe(true);
    });

    test('keys in folders are independent objects', async () => {
      const base = key('d');
      await put(driver, `${base}/a/one.txt`, Buffer.from('one'));
      await put(driver, `${base}/a/two.txt`, Buffer.from('two'));
      await put(driver, `${base}/b/one.txt`, Buffer.from('three'));
      expect((await readAll((await driver.get(`${base}/a/one.txt`)).body)).toString()).toBe('one');
      expect((await readAll((await driver.get(`${base}/b/one.txt`)).body)).toString()).toBe('three');
      await driver.delete(`${base}/a/one.txt`);
      expect((await readAll((await driver.get(`${base}/a/two.txt`)).body)).toString()).toBe('two');
    });

    test('put replaces an existing object', async () => {
      const k = key();
      await put(driver, k, Buffer.from('first version'));
      await put(driver, k, Buffer.from('second'));
      expect((await readAll((await driver.get(k)).body)).toString()).toBe('second');
    });

    test('nothing is visible at the key until put completes', async () => {
      const k = key();
      const body = new PassThrough();
      const done = driver.put(k, body, { contentType: 'text/plain' });
      body.write(random(64 * 1024));
      await new Promise((r) => setTimeout(r, 100));
      await expect(driver.stat(k)).rejects.toBeInstanceOf(StorageNotFoundError);
      body.end(random(1024));
      await done;
      expect(await driver.stat(k)).toEqual({ size: 64 * 1024 + 1024 });
    });

    test('a body that fails midway: put rejects with its error and leaves nothing', async () => {
      const k = key();
      const failure = new Error('client went away');
      let sent = 0;
      const body = new Readable({
        read() {
          if (sent >= 6 * 1024 * 1024) return this.destroy(failure); // after the first multipart part
          sent += 256 * 1024;
          this.push(random(256 * 1024));
        },
      });
      await expect(driver.put(k, body, { contentType: 'application/pdf' })).rejects.toBe(failure);
      await expect(driver.stat(k)).rejects.toBeInstanceOf(StorageNotFoundError);
    });

    test('a body that failed before put, or fails while put is setting up: rejects with its error, leaves nothing', async () => {
      const early = new Error('failed before put');
      const before = new PassThrough();
      before.on('error', () => undefined);
      before.destroy(early);
      const k1 = key();
      await expect(driver.put(k1, before, { contentType: 'text/plain' })).rejects.toBe(early);

      const during = new PassThrough();
      const k2 = key();
      const failure = new Error('failed during setup');
      const result = driver.put(k2, during, { contentType: 'text/plain' });
      during.destroy(failure);
      await expect(result).rejects.toBe(failure);
      await expect(driver.stat(k1)).rejects.toBeInstanceOf(StorageNotFoundError);
      await expect(driver.stat(k2)).rejects.toBeInstanceOf(StorageNotFoundError);
    });

    test.each(['', '../escape', 'a/../../escape', '/absolute', 'a//b', '.tmp/x', 'a/.hidden', 'nul\u0000byte'])(
      'refuses the invalid key %j',
      async (bad) => {
        await expect(put(driver, bad, Buffer.from('x'))).rejects.toBeInstanceOf(InvalidKeyError);
        await expect(driver.get(bad)).rejects.toBeInstanceOf(InvalidKeyError);
        await expect(driver.delete(bad)).rejects.toBeInstanceOf(InvalidKeyError);
      },
    );
  });
}
