import { Readable } from 'node:stream';
import { loadConfig } from '../../src/config';
import { createStorage } from '../../src/storage';
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
