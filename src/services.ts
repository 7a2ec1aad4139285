import type { Config } from './config';
import { CustomersService } from './customers/service';
import type { Db } from './db';
import { FileDeletions, type FileDeletionsOptions } from './documents/deletions';
import { DocumentsService } from './documents/service';
import { S3Sync } from './documents/sync';
import type { Logger } from './logger';
import type { Storage } from './storage';
import { Metrics } from './metrics';
import { Tasks } from './tasks';

export interface Services {
  documents: DocumentsService;
  customers: CustomersService;
  deletions: FileDeletions;
  sync: S3Sync;
  /** Work requests leave running (file removals after commit); shutdown waits for it. */
  tasks: Tasks;
  metrics: Metrics;
}

/** Every service over the same dependencies: the app's routes and the background jobs share them. */
export function createServices(
  deps: { config: Config; db: Db; storage: Storage; logger: Logger; metrics?: Metrics },
  options: { deletions?: FileDeletionsOptions } = {},
): Services {
  const metrics = deps.metrics ?? new Metrics();
  const tasks = new Tasks();
  const deletions = new FileDeletions(deps, options.deletions);
  const documents = new DocumentsService({ ...deps, deletions, tasks });
  const customers = new CustomersService({ db: deps.db, documents });
  const sync = new S3Sync({ ...deps, deletions });
  metrics.gauge('document_file_deletions_pending', 'Stored files queued for removal (their rows are gone)', () =>
    deletions.pending(),
  );
  metrics.gauge('documents_pending_move', 'Documents kept on local disk during an S3 outage, waiting to move to S3', () =>
    documents.pendingMoves(),
  );
  metrics.watchGates({ ...deps.db.gates, ...deps.storage.gates });
  return { documents, customers, deletions, sync, tasks, metrics };
}
