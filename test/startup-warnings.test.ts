import { loadConfig } from '../src/config';
import { startupWarnings } from '../src/startup-warnings';

const warningsFor = (env: Record<string, string>) => startupWarnings(loadConfig(env, '/srv/app'));
const messages = (env: Record<string, string>) => warningsFor(env).map((w) => `${w.level}: ${w.message}`);
const s3 = { AWS_S3_BUCKET_NAME: 'crm-docs', API_TOKENS: 'a-token-of-16-chars' };

describe('startup warnings', () => {
  test('development defaults: only the open API is worth a line', () => {
    expect(messages({})).toEqual([expect.stringMatching(/^warn: API_TOKENS and JWT_SECRET are both unset/)]);
  });

  test('a JWT secret without an audience: tokens signed for anything are accepted, which is worth a line', () => {
    const secret = 'a-jwt-secret-of-at-least-32-characters!';
    expect(messages({ JWT_SECRET: secret })).toEqual([expect.stringMatching(/^warn: JWT_SECRET without JWT_AUDIENCE/)]);
    expect(messages({ JWT_SECRET: secret, JWT_AUDIENCE: 'crm-documents' })).toEqual([]);
  });

  test('production on the embedded database and local disk: both would be lost with the disk', () => {
    const w = warningsFor({ NODE_ENV: 'production', API_TOKENS: 'a-token-of-16-chars' });
    expect(w.map((x) => x.message)).toEqual([expect.stringMatching(/^DATABASE_URL is unset/), expect.stringMatching(/^documents are stored on local disk/)]);
    expect(w[0].fields).toEqual({ pgliteDataDir: '/srv/app/data/pglite' });
    expect(w[1].fields).toEqual({ uploadDir: '/srv/app/uploads' });
  });

  test('S3 with its defaults: the fallback is described, and the retries fit in the idle timeout', () => {
    expect(messages({ ...s3, DATABASE_URL: 'postgres://db/crm' })).toEqual([expect.stringMatching(/^info: S3_FALLBACK=local/)]);
    // 30 s × 3 = 90 s, and 20 s left for the waits between attempts.
    expect(messages({ ...s3, S3_TIMEOUT: '30s' }).filter((m) => m.includes('S3_MAX_ATTEMPTS'))).toEqual([]);
    expect(messages({ ...s3, S3_TIMEOUT: '50s', S3_MAX_ATTEMPTS: '2' }).filter((m) => m.includes('S3_MAX_ATTEMPTS'))).toEqual([]);
  });

  test.each([
    [{ S3_TIMEOUT: '40s' }, 120, 'fall back to UPLOAD_DIR'],
    [{ S3_TIMEOUT: '40s', S3_FALLBACK: 'fail' }, 120, 'be answered with 503'],
    [{ S3_TIMEOUT: '10100ms', S3_MAX_ATTEMPTS: '10' }, 101, 'fall back to UPLOAD_DIR'],
  ])('S3 retries that can outlast the idle timeout are named: %j', (env, seconds, outcome) => {
    const w = warningsFor({ ...s3, ...env }).filter((x) => x.message.includes('S3_MAX_ATTEMPTS'));
    expect(w).toHaveLength(1);
    expect(w[0].level).toBe('warn');
    expect(w[0].message).toContain(`S3_MAX_ATTEMPTS is ${seconds} s`);
    expect(w[0].message).toContain(`before an upload can ${outcome}`);
    expect(w[0].fields).toMatchObject({ idleTimeoutMs: 120_000 });
  });
});
