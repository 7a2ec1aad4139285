import { type Config, IDLE_TIMEOUT_MS } from './config';

export interface StartupWarning {
  readonly level: 'warn' | 'info';
  readonly fields?: Record<string, unknown>;
  readonly message: string;
}

/**
 * What S3_TIMEOUT × S3_MAX_ATTEMPTS may reach and leave room, within the idle timeout, for the SDK's waits between
 * attempts: a fraction of a second to a few seconds each for the defaults, more after throttling or a Retry-After.
 */
const S3_BUDGET_MS = IDLE_TIMEOUT_MS - 20_000;

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
  if (config.auth.jwtSecret && !config.auth.jwtAudience) {
    warnings.push({
      level: 'warn',
      message:
        'JWT_SECRET without JWT_AUDIENCE: any JWT signed with the secret is accepted, whatever it was issued for (a session, a password reset); set JWT_AUDIENCE to the aud the CRM puts in tokens for this service',
    });
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
  // While S3 hangs, a request waiting on it sends its client nothing (an upload's body waits for the part in
  // flight) until S3 fails for good. Past the idle timeout the server cuts the client off first: the upload neither
  // falls back to disk nor gets its 503, a download gets no 503, and the client sees a dropped connection.
  const s3 = storage.s3;
  if (storage.driver === 's3' && s3 && s3.timeoutMs * s3.maxAttempts > S3_BUDGET_MS) {
    warnings.push({
      level: 'warn',
      fields: { s3TimeoutMs: s3.timeoutMs, s3MaxAttempts: s3.maxAttempts, idleTimeoutMs: IDLE_TIMEOUT_MS },
      message:
        `S3_TIMEOUT × S3_MAX_ATTEMPTS is ${(s3.timeoutMs * s3.maxAttempts) / 1000} s: while S3 hangs, a request waits that long and more ` +
        `before it fails, but a client's connection is cut off after ${IDLE_TIMEOUT_MS / 1000} s of silence, before an upload can ` +
        `${reliability.s3Fallback === 'local' ? 'fall back to UPLOAD_DIR' : 'be answered with 503'} or a download be answered with 503; ` +
        `keep the product at ${S3_BUDGET_MS / 1000} s or less`,
    });
  }
  return warnings;
}
