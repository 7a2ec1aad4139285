import fs from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { NodeFS } from '@electric-sql/pglite/nodefs';

/**
 * PGlite starts Postgres with fsync off (`-F`), and its Node file system (Emscripten's NODEFS) has no fsync to call
 * anyway: a commit reached the kernel's cache, not the disk. A process crash (SIGKILL, OOM) loses nothing, since the
 * kernel still writes it out; a power loss or a host crash could lose the last rows committed (documents whose
 * upload was answered 201) or leave the data directory corrupt. With these start parameters and this file system,
 * every sync Postgres makes (the WAL at each commit, the data files at a checkpoint, a folder after a new file)
 * reaches the disk. Like all of PGlite's I/O, a sync blocks this process while it runs: about 0.2 ms per commit on
 * a local SSD, more on a network volume.
 *
 * wal_sync_method=fsync: Emscripten routes fsync() to the file system and drops fdatasync(), Postgres's default
 * for the WAL on Linux.
 */
export const DURABLE_START_PARAMS = [
  ...PGlite.defaultStartParams.filter((param) => param !== '-F'),
  ...['-c', 'fsync=on', '-c', 'wal_sync_method=fsync'],
];

interface NodeStream {
  /** The Node file descriptor (PGlite 0.5 opens folders with one too). */
  nfd?: number;
  node: unknown;
}

interface NodeFsType {
  stream_ops: { fsync?: (stream: NodeStream) => number };
  realPath(node: unknown): string;
}

/**
 * `onSyncFailed` is told when a sync fails (EIO, or ENOSPC and EDQUOT on a network volume), and the process then
 * exits 1 at once. Postgres would PANIC, and restart from its WAL; PGlite, embedded, instead spins in that state for
 * good, the event loop blocked: no answer to any request, not even /health, and no log line. Exiting is the crash
 * Postgres means: the platform restarts the service, and the next start replays the WAL, as after any crash. What
 * was not synced was never answered.
 */
export class DurableNodeFS extends NodeFS {
  constructor(
    dataDir: string,
    private readonly onSyncFailed: (err: Error) => void,
  ) {
    super(dataDir);
  }

  override async init(...args: Parameters<NodeFS['init']>): ReturnType<NodeFS['init']> {
    const made = await super.init(...args);
    const preRun = made.emscriptenOpts.preRun ?? [];
    made.emscriptenOpts.preRun = [
      ...preRun,
      (mod) => {
        const nodefs = mod.NODEFS as unknown as NodeFsType;
        nodefs.stream_ops.fsync = (stream) => {
          try {
            syncStream(nodefs, stream);
          } catch (err) {
            this.onSyncFailed(err as Error);
            process.exit(1);
          }
          return 0;
        };
      },
    ];
    return made;
  }
}

function syncStream(nodefs: NodeFsType, stream: NodeStream): void {
  if (stream.nfd !== undefined) return fs.fsyncSync(stream.nfd);
  // A stream without a descriptor (a folder, in Emscripten builds that open none for one): synced by its path.
  const fd = fs.openSync(nodefs.realPath(stream.node), 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Syncs every file and folder of a data directory, as Postgres's own initdb does for a new cluster: PGlite's makes
 * one with fsync off, and files no commit has touched since would otherwise wait in the kernel's cache.
 */
export async function syncTree(dir: string): Promise<void> {
  for (const entry of await fs.promises.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) await syncTree(full);
    else if (entry.isFile()) await syncPath(full);
  }
  await syncPath(dir);
}

async function syncPath(file: string): Promise<void> {
  const handle = await fs.promises.open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
