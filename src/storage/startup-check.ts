import { setTimeout as sleep } from 'node:timers/promises';
import { within } from '../timeout';
import { StorageRefusedError } from './driver';
import type { Storage } from './index';

/** The pauses before asking again a store that refuses at startup: a bucket still being made, a key just issued. */
export const STARTUP_RECHECKS_MS = [2_000, 5_000];

/**
 * The store's refusal (StorageRefusedError: a wrong bucket, endpoint or credentials) when it refuses this service at
 * startup and goes on refusing for a few seconds; undefined when it answers, or does not answer within 5 s, which is
 * an outage: the service starts, degraded.
 */
export async function refusalAtStart(storage: Storage, rechecksMs: readonly number[] = STARTUP_RECHECKS_MS): Promise<StorageRefusedError | undefined> {
  for (let attempt = 0; ; attempt++) {
    const failure = await within(
      storage.primary.check().then(
        () => undefined,
        (err: unknown) => err,
      ),
      5_000,
      undefined,
    );
    if (!(failure instanceof StorageRefusedError)) return undefined;
    if (attempt >= rechecksMs.length) return failure;
    await sleep(rechecksMs[attempt]);
  }
}
