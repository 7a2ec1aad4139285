import { type Config, IDLE_TIMEOUT_MS } from './config';

export interface StartupWarning {
  readonly level: 'warn' | 'info';
  readonly fields?: Record<string, unknown>;
  readonly message: string;
}

/**
 * The longest wait before retry i (0 first) in the SDK's standard retry mode: a random share of 500 ms × 2^i, the
 * base it uses for throttling (100 ms otherwise), and never over 20 s.
 */
const longestBackoffMs = (i: number) => Math.min(500 * 2 ** i, 20_000);

/**
 * What a valid configuration still risks, for ops to read in the first lines of the log. Refusals belong in
 * loadConfig; these start the service, because each can be what is meant (a staging box on local disk, a bench).
 */
export function startupWarnings(config: Config): StartupWarning[] {
  const warnings: StartupWarning[] = [];
  const { storage, reliability } = config;
  if (config.auth.open) {
    warnings.push({ level: 'warn', message: 'API_TOKENS and JWT_SECRET are both unset: every /api route is open to anyone who can reach it' });
  }
  if (config.nodeEnv === 'production' && !config.database.url) {
    warnings.push({
      level: 'warn',
      fields: { pgliteDataDir: config.database.pgliteDataDir },
      message:
        'DATABASE_URL is unset: metadata is in the embedded database, lost with the disk on a redeploy unless PGLITE_DATA_DIR is on a persistent volume',
    });
  }
  if (config.nodeEnv === 'production' && storage.driver === 'local') {
    warnings.push({
      level: 'warn',
      fields: { uploadDir: storage.uploadDir },
      message: 'documents are stored on local disk, lost with it on a redeploy unless UPLOAD_DIR is a persistent volume; set AWS_S3_BUCKET_NAME to use S3',
    });
  }
  if (storage.driver === 's3' && reliability.s3Fallback === 'local') {
    warnings.push({
      level: 'info',
      fields: { uploadDir: storage.uploadDir },
      message:
        'S3_FALLBACK=local: uploads that arrive while S3 fails are kept in UPLOAD_DIR until S3 answers; on a disk that a redeploy wipes, a redeploy during an S3 outage loses them',
    });
  }
  // While S3 hangs, an upload's body waits for the part in flight, so the client's connection is silent until S3
  // fails for good: past the idle timeout the server cuts it off, and the upload neither falls back to disk nor gets
  // its 503. The client sees a dropped connection, and nothing is stored.
  const s3 = storage.s3;
  if (storage.driver === 's3' && s3) {
    let stallMs = s3.timeoutMs * s3.maxAttempts;
    for (let i = 0; i < s3.maxAttempts - 1; i++) stallMs += longestBackoffMs(i);
    if (stallMs >= IDLE_TIMEOUT_MS) {
      warnings.push({
        level: 'warn',
        fields: { s3TimeoutMs: s3.timeoutMs, s3MaxAttempts: s3.maxAttempts, idleTimeoutMs: IDLE_TIMEOUT_MS },
        message: `S3_TIMEOUT × S3_MAX_ATTEMPTS, with the backoff between attempts, can reach ${Math.round(stallMs / 1000)} s: while S3 hangs, an upload waits that long in silence, and its client's connection is cut off after ${IDLE_TIMEOUT_MS / 1000} s, before the upload can ${reliability.s3Fallback === 'local' ? 'fall back to UPLOAD_DIR' : 'be answered with 503'}; lower one of them`,
      });
    }
  }
  return warnings;
}
