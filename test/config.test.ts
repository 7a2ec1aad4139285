import path from 'node:path';
import { ConfigError, loadConfig } from '../src/config';
import { DEFAULT_ALLOWED_TYPES } from '../src/documents/file-types';

const load = (env: Record<string, string>) => loadConfig(env, '/srv/app');
const failure = (env: Record<string, string>) => {
  try {
    load(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected the configuration to be refused');
};

describe('configuration', () => {
  test('defaults: embedded database, local disk, 25 MB, open API in development', () => {
    const c = load({});
    expect(c.port).toBe(3000);
    expect(c.database).toEqual({ url: undefined, pgliteDataDir: path.resolve('/srv/app/data/pglite'), poolSize: 10 });
    expect(c.storage).toEqual({ driver: 'local', uploadDir: path.resolve('/srv/app/uploads'), s3: undefined });
    expect(c.uploads).toEqual({ maxBytes: 25 * 1024 * 1024, allowedTypes: DEFAULT_ALLOWED_TYPES });
    expect(c.auth).toEqual({ tokens: [], jwtSecret: undefined, open: true });
    expect(c.corsOrigins).toEqual([]);
    expect(Object.isFrozen(c) && Object.isFrozen(c.storage)).toBe(true);
  });

  test('a bucket alone switches storage to S3, with its defaults', () => {
    const c = load({ AWS_S3_BUCKET_NAME: 'crm-docs' });
    expect(c.storage.driver).toBe('s3');
    expect(c.storage.s3).toEqual({
      bucket: 'crm-docs',
      region: 'us-east-1',
      prefix: 'customer-documents',
      timeoutMs: 10_000,
      maxAttempts: 3,
      maxSockets: 256,
      uploadMemory: 128 * 1024 * 1024,
      endpoint: undefined,
      forcePathStyle: false,
      credentials: undefined,
    });
    expect(load({ AWS_S3_BUCKET_NAME: 'crm-docs', STORAGE_DRIVER: 'local' }).storage.driver).toBe('local');
  });

  test('an S3-compatible endpoint with path style, keys, and a prefix without slashes', () => {
    const c = load({
      AWS_S3_BUCKET_NAME: 'crm-docs',
      AWS_S3_ENDPOINT: 'https://acc.r2.cloudflarestorage.com',
      AWS_S3_FORCE_PATH_STYLE: 'true',
      AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'secret',
      AWS_S3_PREFIX: '/prod/docs/',
      AWS_REGION: 'auto',
    });
    expect(c.storage.s3).toMatchObject({
      endpoint: 'https://acc.r2.cloudflarestorage.com',
      forcePathStyle: true,
      prefix: 'prod/docs',
      region: 'auto',
      credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'secret' },
    });
  });

  test('empty values count as unset, as in a copied .env.example', () => {
    const c = load({ PORT: '', AWS_S3_BUCKET_NAME: '', STORAGE_DRIVER: '', MAX_UPLOAD_SIZE: ' ', API_TOKENS: '' });
    expect(c.port).toBe(3000);
    expect(c.storage.driver).toBe('local');
    expect(c.uploads.maxBytes).toBe(25 * 1024 * 1024);
  });

  test('sizes: 1gb, 500kb, or bytes', () => {
    expect(load({ MAX_UPLOAD_SIZE: '1gb' }).uploads.maxBytes).toBe(1024 ** 3);
    expect(load({ MAX_UPLOAD_SIZE: '500KB' }).uploads.maxBytes).toBe(500 * 1024);
    expect(load({ MAX_UPLOAD_SIZE: '1048576' }).uploads.maxBytes).toBe(1048576);
    // Pasted with a space around it, or with a space before its unit, as bytes.format writes it.
    expect(load({ MAX_UPLOAD_SIZE: ' 25mb ' }).uploads.maxBytes).toBe(25 * 1024 * 1024);
    expect(load({ MAX_UPLOAD_SIZE: '1.5 GB' }).uploads.maxBytes).toBe(1.5 * 1024 ** 3);
  });

  test('lists: allowed types, tokens and origins', () => {
    const c = load({
      ALLOWED_FILE_TYPES: 'application/pdf, Image/PNG',
      API_TOKENS: 'token-number-one-123456, token-number-two-123456',
      CORS_ORIGINS: 'https://crm.example.com,http://localhost:5173',
    });
    expect(c.uploads.allowedTypes).toEqual(['application/pdf', 'image/png']);
    expect(c.auth).toMatchObject({ tokens: ['token-number-one-123456', 'token-number-two-123456'], open: false });
    expect(c.corsOrigins).toEqual(['https://crm.example.com', 'http://localhost:5173']);
  });

  test.each([
    [{ PORT: 'eighty' }, 'PORT accepts a port number'],
    [{ PORT: '70000' }, 'PORT accepts a port number'],
    [{ STORAGE_DRIVER: 'gcs' }, 'STORAGE_DRIVER accepts s3 or local'],
    [{ STORAGE_DRIVER: 's3' }, 'AWS_S3_BUCKET_NAME: required when STORAGE_DRIVER is s3'],
    [{ AWS_S3_BUCKET_NAME: 'Bad_Bucket' }, 'AWS_S3_BUCKET_NAME accepts an S3 bucket name'],
    [{ AWS_S3_ENDPOINT: 'minio:9000' }, 'AWS_S3_ENDPOINT accepts an http:// or https:// URL'],
    [{ AWS_S3_FORCE_PATH_STYLE: 'yes' }, 'AWS_S3_FORCE_PATH_STYLE accepts true or false'],
    [{ AWS_ACCESS_KEY_ID: 'AKIA' }, 'AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: set both'],
    [{ MAX_UPLOAD_SIZE: 'huge' }, 'MAX_UPLOAD_SIZE accepts a size such as 25mb'],
    [{ MAX_UPLOAD_SIZE: '0' }, 'MAX_UPLOAD_SIZE accepts'],
    // Units bytes.parse does not know, which it would read as so many bytes: 25M as 25.
    [{ MAX_UPLOAD_SIZE: '25M' }, 'MAX_UPLOAD_SIZE accepts'],
    [{ MAX_UPLOAD_SIZE: '25MiB' }, 'MAX_UPLOAD_SIZE accepts'],
    [{ MAX_UPLOAD_SIZE: '1.5' }, 'MAX_UPLOAD_SIZE accepts'],
    [{ ALLOWED_FILE_TYPES: 'pdf,png' }, 'ALLOWED_FILE_TYPES accepts comma-separated MIME types'],
    [{ API_TOKENS: 'short' }, 'API_TOKENS accepts comma-separated tokens of at least 16 characters'],
    [{ JWT_SECRET: 'too-short' }, 'JWT_SECRET accepts a secret of at least 32 characters'],
    [{ CORS_ORIGINS: 'crm.example.com' }, 'CORS_ORIGINS accepts comma-separated origins'],
    [{ CORS_ORIGINS: 'https://crm.example.com/app' }, 'CORS_ORIGINS accepts'],
    [{ CORS_ORIGINS: 'https://*.example.com' }, 'CORS_ORIGINS takes no wildcard within an origin: list each origin, or * for any'],
    [{ CORS_ORIGINS: 'https://crm.example.com,*.example.com' }, 'CORS_ORIGINS takes no wildcard'],
    [{ DATABASE_URL: 'mysql://localhost/crm' }, 'DATABASE_URL accepts a postgres://'],
    [{ DATABASE_URL: 'postgres://crm@127.0.0.1:notaport/crm' }, 'DATABASE_URL accepts a postgres://'],
    [{ LOG_LEVEL: 'verbose' }, 'LOG_LEVEL accepts one of'],
    [{ AWS_S3_BUCKET_NAME: 'b-1', AWS_S3_PREFIX: '.archive' }, 'AWS_S3_PREFIX accepts folder names'],
    [{ AWS_S3_BUCKET_NAME: 'b-1', AWS_S3_PREFIX: 'a//b' }, 'AWS_S3_PREFIX accepts folder names'],
    [{ S3_FALLBACK: 'disk' }, 'S3_FALLBACK accepts local or fail'],
    [{ S3_TIMEOUT: 'soon' }, 'S3_TIMEOUT accepts a duration'],
    [{ S3_TIMEOUT: '10ms' }, 'S3_TIMEOUT accepts a duration'],
    [{ S3_MAX_ATTEMPTS: '0' }, 'S3_MAX_ATTEMPTS accepts a whole number from 1 to 10'],
    [{ S3_MAX_SOCKETS: '1.5' }, 'S3_MAX_SOCKETS accepts a whole number from 1 to 10000'],
    [{ S3_UPLOAD_MEMORY: '1mb' }, 'S3_UPLOAD_MEMORY accepts a size such as 128mb or 1gb, or a number of bytes, of at least 5MB'],
    [{ DATABASE_POOL_SIZE: '2' }, 'DATABASE_POOL_SIZE accepts a whole number from 3 to 1000'],
    [{ QUEUE_TIMEOUT: 'soon' }, 'QUEUE_TIMEOUT accepts a duration'],
    [{ MAX_CONNECTIONS: '-1' }, 'MAX_CONNECTIONS accepts a whole number from 1 to 1000000'],
    [{ SYNC_INTERVAL: '-5s' }, 'SYNC_INTERVAL accepts a duration'],
    [{ SHUTDOWN_TIMEOUT: '1.5.2' }, 'SHUTDOWN_TIMEOUT accepts a duration'],
    // Past what a Node timer holds, which would fire at once: a sync job without pause, a shutdown without a drain.
    [{ SYNC_INTERVAL: '30d' }, 'SYNC_INTERVAL accepts a duration such as 30s, 500ms or 2m (a bare number is seconds), from 100ms to 24d'],
    [{ SHUTDOWN_TIMEOUT: '2147484' }, 'SHUTDOWN_TIMEOUT accepts a duration'],
    [{ NODE_ENV: 'Production' }, 'NODE_ENV accepts production in lower case'],
    [{ NODE_ENV: 'prod' }, 'NODE_ENV accepts production in lower case'],
    // Number() reads these; no one means them for a port or a count.
    [{ PORT: '0x10F6' }, 'PORT accepts a port number'],
    [{ S3_MAX_ATTEMPTS: '1e1' }, 'S3_MAX_ATTEMPTS accepts a whole number'],
    [{ DATABASE_POOL_SIZE: '0b11' }, 'DATABASE_POOL_SIZE accepts a whole number'],
  ])('%j is refused, naming the variable and what it accepts', (env, message) => {
    expect(failure(env)).toContain(message);
  });

  test('reliability knobs: defaults, durations with a unit, a bare number as seconds', () => {
    expect(load({}).reliability).toEqual({
      s3Fallback: 'local',
      syncIntervalMs: 60_000,
      shutdownTimeoutMs: 25_000,
      queueTimeoutMs: 10_000,
      maxConnections: 4_096,
    });
    expect(
      load({ S3_FALLBACK: 'fail', SYNC_INTERVAL: '5m', SHUTDOWN_TIMEOUT: '10', QUEUE_TIMEOUT: '0', MAX_CONNECTIONS: '500' }).reliability,
    ).toEqual({ s3Fallback: 'fail', syncIntervalMs: 300_000, shutdownTimeoutMs: 10_000, queueTimeoutMs: 0, maxConnections: 500 });
    expect(load({ DATABASE_POOL_SIZE: '40' }).database.poolSize).toBe(40);
    expect(load({ AWS_S3_BUCKET_NAME: 'b-1' }).storage.s3?.uploadMemory).toBe(128 * 1024 * 1024);
    const s3 = load({ AWS_S3_BUCKET_NAME: 'b-1', S3_TIMEOUT: '2500ms', S3_MAX_ATTEMPTS: '5', S3_MAX_SOCKETS: '64', S3_UPLOAD_MEMORY: '64mb' }).storage.s3;
    expect(s3).toMatchObject({ timeoutMs: 2_500, maxAttempts: 5, maxSockets: 64, uploadMemory: 64 * 1024 * 1024 });
    expect(load({ SYNC_INTERVAL: '24d' }).reliability.syncIntervalMs).toBe(24 * 86_400_000);
    // A decimal is seconds too, not the milliseconds ms() would make of it.
    expect(load({ SHUTDOWN_TIMEOUT: '2.5', QUEUE_TIMEOUT: '0.5' }).reliability).toMatchObject({ shutdownTimeoutMs: 2_500, queueTimeoutMs: 500 });
    expect(load({ AWS_S3_BUCKET_NAME: 'b-1', S3_TIMEOUT: '1.5' }).storage.s3?.timeoutMs).toBe(1_500);
    expect(load({ PORT: ' 8080 ' }).port).toBe(8080);
  });

  test('every invalid variable is named at once', () => {
    const message = failure({ PORT: 'x', MAX_UPLOAD_SIZE: 'y' });
    expect(message).toContain('PORT');
    expect(message).toContain('MAX_UPLOAD_SIZE');
  });

  test('the embedded database in the upload folder itself is refused; beside it, inside it, or unused, it is not', () => {
    expect(failure({ UPLOAD_DIR: '/data', PGLITE_DATA_DIR: '/data/' })).toContain('PGLITE_DATA_DIR, UPLOAD_DIR');
    expect(load({ UPLOAD_DIR: '/data/uploads', PGLITE_DATA_DIR: '/data/pglite' }).database.pgliteDataDir).toBe('/data/pglite');
    expect(load({ UPLOAD_DIR: '/data', PGLITE_DATA_DIR: '/data/pglite' }).database.pgliteDataDir).toBe('/data/pglite');
    expect(load({ UPLOAD_DIR: '/data', PGLITE_DATA_DIR: '/data', DATABASE_URL: 'postgres://db/crm' }).storage.uploadDir).toBe('/data');
  });

  test('production without authentication is refused unless AUTH_DISABLED=true says it is meant', () => {
    expect(failure({ NODE_ENV: 'production' })).toContain('AUTH_DISABLED=true');
    expect(load({ NODE_ENV: 'production', AUTH_DISABLED: 'true' }).auth.open).toBe(true);
    expect(load({ NODE_ENV: 'production', API_TOKENS: 'a-long-enough-token-1234' }).auth.open).toBe(false);
    expect(load({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32) }).auth.open).toBe(false);
  });
});
