import { Router } from 'express';
import type { Config } from '../config';
import type { Metrics } from '../metrics';
import { BadRequestError } from '../errors';
import { sendJsonList } from '../http/json-list';
import { parseId } from '../http/params';
import { documentPath } from '../http/paths';
import type { MinimumRate } from '../http/rate';
import { sendFile } from '../http/send-file';
import { etagOf, mimeTypeOf, toDocument } from './document';
import { downloadName, isInlineSafe } from './file-types';
import type { DocumentsService, StoredUpload } from './service';
import { uploadMiddleware } from './upload';

/** Mounted at /api/customers/:customerId/documents. */
export function documentsRouter(
  documents: DocumentsService,
  config: Config,
  metrics: Metrics,
  { sendRate, formTailMs }: { sendRate?: MinimumRate; formTailMs?: number } = {},
): Router {
  const router = Router({ mergeParams: true });
  const allowedTypes = new Set(config.uploads.allowedTypes);
  const customerOf = (params: Record<string, unknown>) => parseId(params.customerId, 'customer');
  const documentOf = (params: Record<string, unknown>) => parseId(params.documentId, 'document');

  router.get('/', async (req, res) => {
    await sendJsonList(res, 'documents', documents.list(customerOf(req.params)));
  });

  router.post(
    '/',
    // Checks the customer too, while the file streams.
    uploadMiddleware(documents, config.uploads.maxBytes, formTailMs),
    async (req, res) => {
      const stored = req.file as unknown as StoredUpload | undefined;
      if (!stored) {
        throw new BadRequestError('FILE_REQUIRED', 'Send the document as multipart/form-data, in the form field "file"');
      }
      const document = await documents.create(customerOf(req.params), stored, req.body ?? {});
      metrics.uploadedBytes.inc({ storage: document.storage }, stored.size);
      res.status(201).location(documentPath(document.customerId, document.id)).json(document);
    },
  );

  router.get('/:documentId', async (req, res) => {
    res.json(toDocument(await documents.get(customerOf(req.params), documentOf(req.params))));
  });

  for (const [path, inline] of [['download', false], ['view', true]] as const) {
    router.get(`/:documentId/${path}`, async (req, res) => {
      const row = await documents.get(customerOf(req.params), documentOf(req.params));
      const mimeType = mimeTypeOf(row);
      const file = {
        fileName: downloadName(row.file_name, mimeType, allowedTypes),
        mimeType,
        etag: etagOf(row),
        disposition: inline && isInlineSafe(mimeType) ? ('inline' as const) : ('attachment' as const),
      };
      const sent = await sendFile(req, res, file, (range, signal) => documents.open(row, range, signal), sendRate);
      if (sent > 0) metrics.downloadedBytes.inc({ storage: row.storage }, sent);
    });
  }

  router.delete('/:documentId', async (req, res) => {
    await documents.remove(customerOf(req.params), documentOf(req.params));
    res.status(204).end();
  });

  return router;
}
