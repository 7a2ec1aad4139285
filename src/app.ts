import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import cors from 'cors';
import express from 'express';
import { pinoHttp } from 'pino-http';
import type { Config } from './config';
import { customersRouter } from './customers/routes';
import type { Db } from './db';
import { documentsRouter } from './documents/routes';
import { bearerAuth } from './http/auth';
import { minimumBodyRate } from './http/body-rate';
import { MINIMUM_RATE, type MinimumRate } from './http/rate';
import { healthRouter } from './http/health';
import { openApiDocument } from './http/openapi';
import { metricsMiddleware } from './metrics';
import { AppError, BadRequestError } from './errors';
import { errorHandler, notFound } from './http/errors';
import { freshByETag } from './http/conditional';
import { sentWhole } from './http/send-file';
import { lingerBytesFor } from './http/stop-reading';
import { type Logger, redactRequest, requestContext } from './logger';
import { createServices, type Services } from './services';
import type { Storage } from './storage';

export interface AppDeps {
  config: Config;
  db: Db;
  storage: Storage;
  logger: Logger;
  /** Made from the other dependencies when not given; server.ts shares them with the background jobs. */
  services?: Services;
  /** How fast a request body must keep coming, and a downloaded file be read (http/rate.ts); tests shorten them. */
  bodyRate?: MinimumRate;
  sendRate?: MinimumRate;
  /** FORM_TAIL_MS (config.ts), the time a form has to end once its file is stored; tests shorten it. */
  formTailMs?: number;
}

/**
 * Requests with an Expect that Node cannot meet (anything but 100-continue, RFC 9110 10.1.1): Node's own rule
 * decides, and server.ts marks them here for the app to answer 417 as JSON, where Node would send an empty 417.
 */
export const unmetExpectations = new WeakSet<IncomingMessage>();

/** The Express app over its dependencies; no listen(), so supertest drives the real thing. */
export function createApp({ config, db, storage, logger, services, bodyRate, sendRate, formTailMs }: AppDeps): express.Express {
  const { documents, customers, metrics } = services ?? createServices({ config, db, storage, logger });

  const app = express();
  app.disable('x-powered-by');
  freshByETag(app);
  app.use(metricsMiddleware(metrics));
  app.use(
    pinoHttp({
      logger,
      genReqId: (_req, res) => {
        const id = randomUUID();
        res.setHeader('X-Request-Id', id);
        return id;
      },
      serializers: { req: redactRequest },
      autoLogging: { ignore: (req) => req.url === '/health' || req.url === '/ready' || req.url === '/metrics' },
      // pino-http gives each 5xx's request line an Error of its own making ("failed with status code 503") and its
      // stack, which says nothing: the error handler has logged what failed, or the busy warning what was full.
      customErrorObject: (_req, _res, err, fields) => (/^failed with status code \d+$/.test(err.message) ? { ...fields, err: undefined } : fields),
      // pino-http's rule, less two false alarms for anyone who watches for aborted requests: a request without a
      // body that nothing read is "aborted" once its client closes (readableAborted), though it arrived whole
      // (complete); and a download the client closed once it had every byte is complete (send-file.ts).
      customSuccessMessage: (req, res) =>
        !(req.readableAborted && !req.complete) && (res.writableEnded || sentWhole.has(res)) ? 'request completed' : 'request aborted',
    }),
  );
  app.use((req, res, next) => {
    res.set('X-Content-Type-Options', 'nosniff');
    requestContext.run({ requestId: String(req.id) }, next);
  });
  // HTTP/1.1 requires Host (RFC 9112 3.2). server.ts turns off Node's own check, which answers with an empty body,
  // so the refusal comes here, as JSON like every other.
  app.use((req, _res, next) => {
    if (req.httpVersion === '1.1' && req.headers.host === undefined) {
      return next(new BadRequestError('BAD_REQUEST', 'An HTTP/1.1 request must send a Host header'));
    }
    if (unmetExpectations.has(req)) {
      return next(new AppError('EXPECTATION_FAILED', 417, 'Only "Expect: 100-continue" can be met; send the request without Expect'));
    }
    next();
  });
  if (config.corsOrigins.length > 0) {
    app.use(
      cors({
        origin: config.corsOrigins.includes('*') ? '*' : [...config.corsOrigins],
        // The methods some route answers; cors' default also offers PUT and PATCH, which none does.
        methods: ['GET', 'HEAD', 'POST', 'DELETE'],
        // Retry-After on a 503 and WWW-Authenticate on a 401 are for the frontend to act on, so it must see them.
        exposedHeaders: [
          'Location',
          'Content-Disposition',
          'Content-Range',
          'Content-Length',
          'Accept-Ranges',
          'ETag',
          'X-Request-Id',
          'Retry-After',
          'WWW-Authenticate',
        ],
        maxAge: 600,
      }),
    );
  }

  // After CORS, so that a browser can read the 408 it gets. An upload waiting for room (QUEUE_TIMEOUT) has sent
  // little yet, so the grace outlasts that wait.
  const graceMs = Math.max(MINIMUM_RATE.graceMs, config.reliability.queueTimeoutMs + 10_000);
  app.use(minimumBodyRate(bodyRate ?? { ...MINIMUM_RATE, graceMs }));

  // Express would answer an OPTIONS that no route handles itself, in plain text; with CORS on, cors() has
  // answered it above. Every method no route takes gets the same JSON 404.
  app.use((req, res, next) => (req.method === 'OPTIONS' ? notFound(req, res, next) : next()));

  app.use(healthRouter({ db, storage, s3Fallback: config.reliability.s3Fallback, logger }));
  app.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument);
  });
  // Protected like /api: metrics tell how busy the service is and with what.
  app.get('/metrics', bearerAuth(config.auth), async (_req, res) => {
    res.set('Content-Type', metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  const api = express.Router();
  api.use(bearerAuth(config.auth));
  // Customers' data and files: never kept by a shared cache (a proxy in front of an API left open, or a CDN); a
  // browser may keep them, but asks again with the ETag (304) before reuse. Errors replace it with no-store.
  api.use((_req, res, next) => {
    res.set('Cache-Control', 'private, no-cache');
    next();
  });
  // The paths of http/paths.ts, which Location headers name.
  api.use('/customers', customersRouter(customers));
  api.use('/customers/:customerId/documents', documentsRouter(documents, config, metrics, { sendRate, formTailMs }));
  app.use('/api', api);

  app.use(notFound);
  app.use(errorHandler(lingerBytesFor(config.uploads.maxBytes)));
  return app;
}
