import { Readable } from 'node:stream';
import { loadConfig } from '../../src/config';
import { createStorage } from '../../src/storage';
import { StorageNotFoundError, StorageUnavailableError } from '../../src/storage';
import { S3Driver } from '../../src/storage/s3';
import { startS3, type TestS3 } from '../helpers/s3';
import { random } from '../helpers/streams';
import { describeStorageDriver } from './conformance';

describeStorageDriver('S3 (s3rver over HTTP)', async () => {
  const s3: TestS3 = await startS3();
  // Built exactly as the service builds it: from the validated (frozen) configuration, its own client.
  const storage = createStorage(loadConfig({ NODE_ENV: 'test', ...s3.env }));
  return {
    driver: storage.s3!,
    cleanup: async () => {
      storage.close();
      await s3.stop();
    },
  };
});

describe('S3Driver multipart uploads', () => {
  let s3: TestS3;
  const sent: string[] = [];
  beforeAll(async () => {
    s3 = await startS3();
    // Records the operations the real client sends; the requests still go to the S3 server.
    s3.client.middlewareStack.add(
      (next, context) => (args) => {
        sent.push(context.commandName as string);
        return next(args);
      },
      { step: 'initialize', name: 'recordCommands' },
    );
  });
  afterAll(() => s3.stop());

  test('a body that fails after a part was uploaded aborts the multipart upload it started', async () => {
    sent.length = 0;
    const driver = new S3Driver(s3.client, s3.config.bucket, { partSize: 5 * 1024 * 1024, queueSize: 1 });
    const failure = new Error('client went away');
    let pushed = 0;
    const body = new Readable({
      read() {
        if (pushed >= 11 * 1024 * 1024) return this.destroy(failure);
        pushed += 1024 * 1024;
        this.push(random(1024 * 1024));
      },
    });
    await expect(driver.put('customer-documents/1/aborted.pdf', body, { contentType: 'application/pdf' })).rejects.toBe(failure);
    expect(sent).toContain('CreateMultipartUploadCommand');
    expect(sent).toContain('UploadPartCommand');
    expect(sent).toContain('AbortMultipartUploadCommand');
    expect(sent).not.toContain('CompleteMultipartUploadCommand');
  });
});

/**
 * AWS answers a GET or HEAD of a missing key with 403 AccessDenied when the credential may not list that key, as
 * with S3_SETUP_GUIDE.md's policy, whose ListBucket carries a prefix condition a GET has no prefix for. The proxy
 * turns s3rver's 404s into those 403s; listings still pass.
 */
describe('S3Driver where the store answers a missing key with 403', () => {
  let s3: TestS3;
  let storage: ReturnType<typeof createStorage>;
  const denied = 'denied-by-policy';
  beforeAll(async () => {
    s3 = await startS3();
    storage = createStorage(loadConfig({ NODE_ENV: 'test', ...s3.env }));
    await storage.s3!.put('customer-documents/1/kept.txt', Readable.from([Buffer.from(denied)]), { contentType: 'text/plain' });
  });
  afterEach(() => s3.proxy.tamper());
  afterAll(async () => {
    storage.close();
    await s3.stop();
  });

  const notFoundToForbidden = (chunk: Buffer) => {
    const text = chunk.toString('latin1');
    if (!text.startsWith('HTTP/1.1 404 ')) return chunk;
    return Buffer.from(text.replace('404 Not Found', '403 Forbidden').replace('<Code>NoSuchKey</Code>', '<Code>AccessDenied</Code>'), 'latin1');
  };

  test('a missing key is still missing, for reads, ranges and sizes', async () => {
    s3.proxy.tamper(notFoundToForbidden);
    const driver = storage.s3!;
    await expect(driver.get('customer-documents/1/gone.pdf')).rejects.toBeInstanceOf(StorageNotFoundError);
    await expect(driver.get('customer-documents/1/gone.pdf', { start: 0, end: 9 })).rejects.toBeInstanceOf(StorageNotFoundError);
    await expect(driver.stat('customer-documents/1/gone.pdf')).rejects.toBeInstanceOf(StorageNotFoundError);
    // A key that only prefixes another is missing too.
    await expect(driver.stat('customer-documents/1/kept')).rejects.toBeInstanceOf(StorageNotFoundError);
    expect((await driver.stat('customer-documents/1/kept.txt')).size).toBe(denied.length);
  });

  test('a 403 for a key that is there is the store refusing, not a missing file', async () => {
    // As when the object's KMS key may not be used: the object is listed, and reading it is refused.
    s3.proxy.tamper((chunk) => {
      const text = chunk.toString('latin1');
      if (!text.startsWith('HTTP/1.1 200 ') || !text.includes(denied)) return chunk;
      return Buffer.from(text.replace(/^HTTP\/1\.1 200 OK/, 'HTTP/1.1 403 Forbidden'), 'latin1');
    });
    await expect(storage.s3!.get('customer-documents/1/kept.txt')).rejects.toBeInstanceOf(StorageUnavailableError);
  });

  test('with the listing refused as well, nothing says the key is missing', async () => {
    s3.proxy.tamper((chunk) => {
      const text = chunk.toString('latin1');
      if (text.includes('<ListBucketResult')) return Buffer.from(text.replace(/^HTTP\/1\.1 200 OK/, 'HTTP/1.1 403 Forbidden'), 'latin1');
      return notFoundToForbidden(chunk);
    });
    await expect(storage.s3!.stat('customer-documents/1/gone.pdf')).rejects.toBeInstanceOf(StorageUnavailableError);
  });
});
