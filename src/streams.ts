import type { EventEmitter } from 'node:events';

/**
 * Resolves once a writable that refused more (write returned false) can take more, or never will (it closed): a
 * writer waiting on it is not left hanging by a reader that went away. Its listeners go with it.
 */
export function untilDrained(stream: EventEmitter): Promise<void> {
  return new Promise((resolve) => {
    const settle = () => {
      stream.off('drain', settle);
      stream.off('close', settle);
      resolve();
    };
    stream.on('drain', settle);
    stream.on('close', settle);
  });
}
