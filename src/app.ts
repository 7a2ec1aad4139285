import { randomUUID } from 'node:crypto';
import cors from 'cors';
import express from 'express';
import { pinoHttp } from 'pino-http';
import type { Config } from './config';
import { CustomersService } from './customers/service';
import { customersRouter } from './customers/routes';
import type { Db } from './db';
import { DocumentsService } from './documents/service';
import { documentsRouter } from './documents/routes';
import { bearerAuth } from './http/auth';
import { errorHandler, notFound } from './http/errors';
import type { Logger } from './logger';
import type { Storage } from './storage';

export interface AppDeps {
  config: Config;
  db: Db;
  storage: Storage;
  logger: Logger;
}

/** The Express app over its dependencies; no listen(), so supertest drives the real thing. */
export function createApp({ config, db, storage, logger }: AppDeps): express.Express {
  const documents = new DocumentsService({ db, storage, config, logger });
  const customers = new CustomersService({ db, documents });

  const app = express();
  app.disable('x-powered-by');
  app.use(
    pinoHttp({
      logger,
      genReqId: (_req, res) => {
        const id = randomUUID();
        res.setHeader('X-Request-Id', id);
        return id;
      },
      autoLogging: { ignore: (req) => req.url === '/health' },
    }),
  );
  app.use((_req, res, next) => {
    res.set('X-Content-Type-Options', 'nosniff');
    next();
  });
  if (config.corsOrigins.length > 0) {
    app.use(
      cors({
        origin: config.corsOrigins.includes('*') ? '*' : [...config.corsOrigins],
        exposedHeaders: ['Location', 'Content-Disposition', 'Content-Range', 'Content-Length', 'Accept-Ranges', 'ETag', 'X-Request-Id'],
        maxAge: 600,
      }),
    );
  }

  app.get('/health', async (_req, res) => {
    const body = { storage: storage.primary.name, database: db.kind };
    if (await db.ping(2_000)) {
      res.json({ status: 'ok', ...body });
    } else {
      res.status(503).json({
        status: 'unavailable',
        ...body,
        error: { code: 'DATABASE_UNAVAILABLE', message: 'The database does not answer' },
      });
    }
  });

  const api = express.Router();
  api.use(bearerAuth(config.auth));
  api.use('/customers', customersRouter(customers));
  api.use('/customers/:customerId/documents', documentsRouter(documents, config));
  app.use('/api', api);

  app.use(notFound);
  app.use(errorHandler);
  return app;
}
