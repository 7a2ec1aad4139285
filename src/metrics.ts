import type { RequestHandler } from 'express';
import client from 'prom-client';
import parseurl from 'parseurl';
import type { StorageName } from './config';
import type { GateLoad } from './gate';

/** How a storage driver call ended (see storage_operation_duration_seconds' help). */
export type StorageOutcome = 'ok' | 'error' | 'busy' | 'cancelled';

/**
 * The service's Prometheus metrics, on a registry of its own (one per app, so tests can run several): requests by
 * route and status, bytes uploaded and downloaded, storage operation latency and errors, the background job's queue
 * lengths, and Node's process metrics.
 */
export class Metrics {
  readonly registry = new client.Registry();
  readonly requests = new client.Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by method, route template and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly requestDuration = new client.Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from a request to the end of its response, by method and route template',
    labelNames: ['method', 'route'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });
  readonly uploadedBytes = new client.Counter({
    name: 'document_uploaded_bytes_total',
    help: 'Bytes of documents accepted, by the store they went to',
    labelNames: ['storage'] as const,
    registers: [this.registry],
  });
  readonly downloadedBytes = new client.Counter({
    name: 'document_downloaded_bytes_total',
    help: 'Bytes of documents sent (whole files and ranges), by the store they came from',
    labelNames: ['storage'] as const,
    registers: [this.registry],
  });
  readonly storageDuration = new client.Histogram({
    name: 'storage_operation_duration_seconds',
    help:
      'Storage driver calls (put: the whole upload; get: until the body starts), by store, operation and outcome: ok (the store answered, ' +
      'a missing file included), error (the store failed), busy (refused for want of room, never sent), cancelled (its client left, ' +
      'or its upload was refused midway)',
    labelNames: ['storage', 'operation', 'outcome'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly storageErrors = new client.Counter({
    name: 'storage_operation_errors_total',
    help: 'Storage driver calls that failed for the store (not for the client: a missing file or a dropped upload)',
    labelNames: ['storage', 'operation'] as const,
    registers: [this.registry],
  });

  /** The gates that admit work (see gate.ts), by the name their series carry. */
  private readonly gates = new Map<string, GateLoad>();

  constructor() {
    client.collectDefaultMetrics({ register: this.registry });
    const gates = this.gates;
    const perGate = (name: string, help: string, read: (gate: GateLoad) => number) =>
      new client.Gauge({
        name,
        help,
        labelNames: ['gate'] as const,
        registers: [this.registry],
        collect() {
          for (const [gate, load] of gates) this.set({ gate }, read(load));
        },
      });
    perGate('admission_capacity', 'Room a gate admits work up to (s3_upload_bytes: bytes; the others: connections)', (g) => g.capacity);
    perGate('admission_in_use', 'Room taken by work admitted and not yet done', (g) => g.inUse);
    perGate('admission_waiting', 'Requests (and the background job) waiting in line for room, each at most QUEUE_TIMEOUT', (g) => g.waiting);
    new client.Counter({
      name: 'admission_refused_total',
      help: 'Waits for room that ran out after QUEUE_TIMEOUT: a request answered 503 *_BUSY, or the background job put off',
      labelNames: ['gate'] as const,
      registers: [this.registry],
      collect() {
        // The gate keeps the count; a counter cannot be set, so it is rebuilt from it at each scrape.
        this.reset();
        for (const [gate, load] of gates) this.inc({ gate }, load.refused);
      },
    });
  }

  /**
   * Reports each gate's room, use, line and refusals, labelled by its key: how close the service is to refusing
   * work, which 503s in http_requests_total alone do not tell from an outage.
   */
  watchGates(gates: Readonly<Record<string, GateLoad | undefined>>): void {
    for (const [name, gate] of Object.entries(gates)) if (gate) this.gates.set(name, gate);
  }

  /**
   * A gauge read when scraped; a read that fails (the database is down) leaves the metric out of that scrape. Not 0:
   * a backlog alert would then clear itself exactly while the database is away.
   */
  gauge(name: string, help: string, read: () => Promise<number>): void {
    new ReadOnScrape({ name, help, registers: [this.registry] }, read);
  }

  observeStorage(storage: StorageName, operation: string, seconds: number, outcome: StorageOutcome): void {
    this.storageDuration.observe({ storage, operation, outcome }, seconds);
    if (outcome === 'error') this.storageErrors.inc({ storage, operation });
  }
}

/**
 * Counts every request by its route template (`/api/customers/:customerId/documents/:documentId`), never by its
 * concrete path, so ids cannot blow up the number of series; requests that match no route count as `unmatched`.
 */
export function metricsMiddleware(metrics: Metrics): RequestHandler {
  return (req, res, next) => {
    const end = metrics.requestDuration.startTimer();
    res.once('close', () => {
      // The path Express routed by: a request target in absolute form (`GET http://any-host/health`) is routed by its
      // path alone, and its scheme and host, which a client makes up at will, must not become series.
      const pathname = parseurl.original(req)?.pathname ?? '';
      const labels = { method: req.method, route: req.route ? routeTemplate(pathname, req.route.path) : 'unmatched' };
      end(labels);
      metrics.requests.inc({ ...labels, status: String(res.statusCode) });
    });
    next();
  };
}

const COLLECTIONS = new Set(['customers', 'documents']);

/**
 * The template of a matched request: its route's own path (already a template, e.g. `/:documentId/download`) under
 * the mount path it was reached through, whose parameters are named after the collection before them
 * (`/api/customers/5/documents` → `/api/customers/:customerId/documents`). Read from the request's path, since
 * Express has restored req.baseUrl by the time the response closes.
 */
export function routeTemplate(pathname: string, routePath: string): string {
  const segments = pathname.split('/').filter(Boolean);
  const tail = routePath.split('/').filter(Boolean);
  const base = segments.slice(0, Math.max(0, segments.length - tail.length));
  // Whatever stands after a collection is its id, digits or not: a client's garbage never becomes a new series.
  const named = base.map((segment, i) => (i > 0 && COLLECTIONS.has(base[i - 1].toLowerCase()) ? `:${base[i - 1].toLowerCase().replace(/s$/, '')}Id` : segment.toLowerCase()));
  return `/${[...named, ...tail].join('/')}`;
}

/** prom-client's unlabelled gauge always has a value (reset() makes it 0), so a failed read empties the sample list. */
class ReadOnScrape extends client.Gauge {
  constructor(
    config: client.GaugeConfiguration<string>,
    private readonly read: () => Promise<number>,
  ) {
    super(config);
  }

  override async get(): Promise<client.MetricObjectWithValues<client.MetricValue<string>>> {
    try {
      this.set(await this.read());
      return await super.get();
    } catch {
      return { ...(await super.get()), values: [] };
    }
  }
}
