import type { Writable } from 'node:stream';
import type { Request, RequestHandler } from 'express';
import multer from 'multer';
import bytes from 'bytes';
import { FORM_TAIL_MS } from '../config';
import { AppError, BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError } from '../errors';
import { parseId } from '../http/params';
import { lingerBytesFor, stopReading } from '../http/stop-reading';
import type { DocumentsService, StoredUpload } from './service';

/** Room for the multipart framing and the text fields around the file, when judging Content-Length up front. */
const MULTIPART_ALLOWANCE = 1024 * 1024;

/** What the middleware and the storage engine share about one upload request. */
interface UploadState {
  readonly customerId: number;
  /** The file cannot be larger than the body (Content-Length) nor than one byte over the limit. */
  readonly sizeAtMost: number;
  /** The customer's refusal (404, or 503 with the database away) once the lookup answers, else undefined. */
  readonly refusal: Promise<unknown>;
  /** The store's work on the file, settled (never rejected) once it has kept or discarded what it received. */
  storing?: Promise<unknown>;
  /** Answers with a refusal at once (the store's, the customer lookup's, a chunked body past the limit). */
  readonly refuse: (err: unknown) => void;
  /** The form's parser, once multer has made it. */
  busboy?: Writable;
  /** Refuses the upload if the form has not ended FORM_TAIL_MS after its file was stored. */
  tail?: NodeJS.Timeout;
}

/**
 * multer, with a storage engine that streams the file through DocumentsService.store into the storage driver:
 * nothing is buffered whole, in memory or on disk. The stored upload's fields land on req.file.
 */
export function uploadMiddleware(documents: DocumentsService, maxBytes: number, formTailMs = FORM_TAIL_MS): RequestHandler {
  const uploads = new WeakMap<object, UploadState>();
  const lingerBytes = lingerBytesFor(maxBytes);
  const engine: multer.StorageEngine = {
    _handleFile(req, file, done) {
      // The file stream fails the moment the upload is refused (over the limit, wrong content, client gone, store
      // down). multer then starts reading the rest of the body to throw it away, and answers only after the last
      // byte: a client sending gigabytes past the limit would keep the server reading them. Stop reading instead;
      // the answer goes out once the store has discarded what it received (below).
      file.stream.once('error', () => stopReading(req, req.res!, lingerBytes));
      const upload = uploads.get(req)!;
      // Inside the promise: a throw here would escape into busboy's event handler and take the process down.
      const stored = (async () =>
        documents.store(
          upload.customerId,
          { stream: file.stream, fileName: file.originalname, declaredType: file.mimetype, sizeAtMost: upload.sizeAtMost },
          upload.refusal,
        ))();
      upload.storing = stored.catch(() => undefined);
      stored.then(
        (s) => {
          upload.tail = setTimeout(() => upload.refuse(formTailTimeout(formTailMs)), formTailMs).unref();
          done(null, s as Partial<Express.Multer.File>);
        },
        (err) => {
          done(err);
          upload.refuse(err);
        },
      );
    },
    // multer calls this for a file it stored before the request failed (a second file, a bad field after it).
    _removeFile(_req, file, done) {
      documents.discard(file as unknown as StoredUpload).then(() => done(null), done);
    },
  };

  const options: multer.Options & { streamHandler: (req: Request, busboy: Writable) => void } = {
    storage: engine,
    // The body, fed to busboy as multer would, and counted: a chunked body announces no length, and one that goes
    // on past the largest file and its form is refused there, whatever else is wrong with it. Without this, a form
    // multer refuses itself (a file in another field, a field over its limit) or one that never reaches a file
    // would be read to its end, however long, before multer answers.
    streamHandler(req, busboy) {
      const upload = uploads.get(req)!;
      upload.busboy = busboy;
      // A file part whose name busboy empties (".." or ".") is dropped by multer without a word, and the form
      // answered as if it had no file at all; so is text sent in the field (a frontend appending a path, not the
      // file). Say what is wrong with it instead.
      const unnamed = () =>
        upload.refuse(
          new BadRequestError('INVALID_UPLOAD', 'The form field "file" holds text, or a file without a usable file name: send the file itself, with its name'),
        );
      busboy.on('file', (field: string, _stream: unknown, info: { filename?: string }) => {
        if (field === 'file' && !info.filename) unnamed();
      });
      busboy.on('field', (field: string) => {
        if (field === 'file') unnamed();
      });
      if (req.headers['content-length'] === undefined) {
        let received = 0;
        req.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (received > maxBytes + MULTIPART_ALLOWANCE) upload.refuse(tooLarge(maxBytes));
        });
      }
      req.pipe(busboy);
    },
    // Browsers send file names as raw UTF-8 in the part header; busboy's default reads them as latin1.
    defParamCharset: 'utf8',
    // One byte over the limit, so the inspector sees the file cross it (and refuses at once) before busboy
    // would truncate it there.
    limits: { fileSize: maxBytes + 1, files: 1, fields: 10, fieldSize: 16 * 1024, parts: 12, headerPairs: 50 },
  };
  const parse = multer(options).single('file');

  return (req, res, next) => {
    // The customer is looked up while the body streams, not before it: a known one no longer waits a database round
    // trip (1 ms of a 13 ms 1 MB upload) for its first byte to be stored. An unknown one fails the upload as soon
    // as the answer comes (DocumentsService.store), and is the answer whatever else is wrong with the upload, as
    // when it was checked first.
    const customerId = parseId(req.params.customerId, 'customer');
    const refusal = documents.requireCustomer(customerId).then(
      () => undefined,
      (err: unknown) => err,
    );
    const fail = async (err: unknown) => next((await refusal) ?? err);
    // A body that is not a form (JSON, a raw file) would be skipped by multer and reported as a missing file, as if
    // the client had sent nothing; say what it sent instead. A request without a body still gets FILE_REQUIRED.
    if (req.is('multipart/form-data') === false && req.get('content-length') !== '0') {
      return void fail(new UnsupportedMediaTypeError('UNSUPPORTED_MEDIA_TYPE', 'Send the document as multipart/form-data, in the form field "file"'));
    }
    // A compressed body would reach busboy as gzip bytes and fail as a malformed form; say what is wrong instead.
    // Browsers never compress uploads, and the files the CRM keeps (PDFs, images, Office files) are compressed
    // already.
    const encoding = req.get('content-encoding')?.trim().toLowerCase();
    if (encoding && encoding !== 'identity') {
      return void fail(new UnsupportedMediaTypeError('UNSUPPORTED_ENCODING', 'Uploads are read uncompressed: send the form without a Content-Encoding'));
    }
    // A body that announces more than the limit is refused before a byte of it is read.
    const announced = Number(req.get('content-length'));
    if (announced > maxBytes + MULTIPART_ALLOWANCE) return void fail(tooLarge(maxBytes));
    let answered = false;
    const answer = async (err?: unknown) => {
      if (answered) return;
      answered = true;
      clearTimeout(upload.tail);
      // When the file stream fails (a body cut short), multer reports at once, not waiting for the engine; the
      // driver may still be discarding what it received. Answer only once it has, so an error means nothing kept.
      await upload.storing;
      if (err) return fail(toUploadError(err, maxBytes));
      next(await refusal); // also for a form without a file
    };
    const upload: UploadState = {
      customerId,
      sizeAtMost: Math.min(Number.isFinite(announced) ? announced : Infinity, maxBytes + 1),
      refusal,
      // An upload refused midway is answered now, not when multer has read the rest of the body (it never will).
      // The parser goes too, so that it starts no file from what it still holds; a file under way fails with it,
      // and the answer waits until its store has discarded what it received.
      refuse: (err) => {
        if (answered) return;
        stopReading(req, res, lingerBytes);
        // multer drains the body when the parser fails, to answer once it has ended: stopped again after that.
        upload.busboy?.once('close', () => stopReading(req, res, lingerBytes)).destroy(err as Error);
        void answer(err);
      },
    };
    uploads.set(req, upload);
    // An unknown customer (or the database away) is the answer as soon as the lookup says so, even before the form
    // reaches its file. A file under way is failed by its store instead (DocumentsService.store), which discards it.
    void refusal.then((err) => {
      if (err && !upload.storing) upload.refuse(err);
    });
    parse(req, res, answer);
  };
}

const MULTER_MESSAGES: Record<string, string> = {
  LIMIT_UNEXPECTED_FILE: 'Send exactly one file, in the form field "file"',
  LIMIT_FILE_COUNT: 'Send exactly one file, in the form field "file": this form has more than one',
  LIMIT_PART_COUNT: 'The form has too many parts',
  LIMIT_FIELD_COUNT: 'The form has too many fields',
  LIMIT_FIELD_KEY: 'A form field name is too long',
  LIMIT_FIELD_VALUE: 'A form field value is too long',
  MISSING_FIELD_NAME: 'A form part has no field name',
};

function toUploadError(err: unknown, maxBytes: number): unknown {
  if (err instanceof AppError) return err;
  if (err instanceof multer.MulterError) {
    if (err.code === 'LIMIT_FILE_SIZE') return tooLarge(maxBytes, err);
    return new BadRequestError('INVALID_UPLOAD', unexpectedFile(err) ?? MULTER_MESSAGES[err.code] ?? err.message, { cause: err });
  }
  // Anything else busboy raises is a body it could not parse ("Unexpected end of form", "Malformed part
  // header", a missing boundary). Programming errors keep their type and stay 500s.
  if (err instanceof Error && err.constructor === Error) {
    return new BadRequestError('INVALID_MULTIPART', `The multipart body could not be read: ${err.message}`, { cause: err });
  }
  return err;
}

/** A file in another field is named, so that the frontend's mistake shows in the message. */
function unexpectedFile(err: multer.MulterError): string | undefined {
  if (err.code !== 'LIMIT_UNEXPECTED_FILE' || !err.field || err.field === 'file') return undefined;
  return `Send the file in the form field "file", not ${JSON.stringify(err.field)}`;
}

function formTailTimeout(ms: number): AppError {
  return new AppError('REQUEST_TIMEOUT', 408, `The form did not end within ${ms / 1000} s of its file: send the other fields with it, not after a pause`);
}

function tooLarge(maxBytes: number, cause?: unknown): PayloadTooLargeError {
  return new PayloadTooLargeError(`The file is larger than the ${bytes.format(maxBytes)} allowed`, { cause });
}
