/**
 * The OpenAPI 3.1 description of every route, served at GET /openapi.json. test/api/openapi.test.ts keeps it true:
 * it validates the document against the OpenAPI 3.1 specification, drives every operation, checks every response's
 * status, content type, headers and JSON body against it, and compares its operations with the app's routes.
 *
 * Schemas are JSON Schema 2020-12 (OpenAPI 3.1's dialect): `type: ['string', 'null']`, never `nullable`.
 */

type Json = Record<string, unknown>;

const ref = (kind: 'schemas' | 'responses' | 'parameters' | 'headers', name: string): Json => ({ $ref: `#/components/${kind}/${name}` });
const schema = (name: string) => ref('schemas', name);
const header = (name: string) => ref('headers', name);

const JSON_TYPE = 'application/json';
const METRICS_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Headers on every response: the request id app.ts assigns, and nosniff. */
const commonHeaders = { 'X-Request-Id': header('XRequestId'), 'X-Content-Type-Options': header('XContentTypeOptions') };

function response(description: string, options: { content?: Json; headers?: Json } = {}): Json {
  return {
    description,
    headers: { ...commonHeaders, ...options.headers },
    ...(options.content ? { content: options.content } : {}),
  };
}

const jsonBody = (s: Json): Json => ({ [JSON_TYPE]: { schema: s } });

/** A JSON GET's answer, with its weak ETag, and the 304 it gives to an If-None-Match that matches it. */
const jsonGet = (description: string, body: Json): Record<string, Json> => {
  const headers = { ETag: header('JsonETag'), 'Cache-Control': header('CacheControl') };
  return {
    '200': response(description, { headers, content: jsonBody(body) }),
    '304': response('If-None-Match matched the current ETag: the copy the client has is current. No body.', { headers }),
  };
};

/** An error response whose `error.code` is one of `codes`. */
function errorResponse(description: string, codes: readonly string[], headers: Json = {}): Json {
  return response(`${description} Codes: ${codes.join(', ')}.`, {
    headers,
    content: jsonBody({
      allOf: [
        schema('Error'),
        { type: 'object', properties: { error: { type: 'object', properties: { code: { enum: [...codes] } } } } },
      ],
    }),
  });
}

// The codes each status can carry, per kind of route. BAD_REQUEST: a path segment with a broken %-escape.
const ID_CODES = ['INVALID_ID', 'BAD_REQUEST'] as const;
const AUTH_CODES = ['AUTH_REQUIRED', 'INVALID_TOKEN', 'TOKEN_EXPIRED', 'TOKEN_NOT_YET_VALID'] as const;
const retryAfter = { 'Retry-After': header('RetryAfter') };

const unauthorized = errorResponse(
  'No valid bearer token was sent (only when API_TOKENS or JWT_SECRET is configured).',
  AUTH_CODES,
  { 'WWW-Authenticate': header('WWWAuthenticate') },
);
const internalError = errorResponse('A fault of the service; logged with its cause, never a stack trace here.', ['INTERNAL_ERROR']);
const databaseUnavailable = errorResponse(
  'The database does not answer, or every connection to it stayed busy for QUEUE_TIMEOUT; retry after Retry-After seconds.',
  ['DATABASE_UNAVAILABLE', 'DATABASE_BUSY'],
  retryAfter,
);
const storeUnavailable = errorResponse(
  'The database or the file store does not answer, or the service had no room for the transfer within QUEUE_TIMEOUT ' +
    '(STORAGE_BUSY: every S3 download connection held by other downloads); retry after Retry-After seconds.',
  ['DATABASE_UNAVAILABLE', 'DATABASE_BUSY', 'STORAGE_UNAVAILABLE', 'STORAGE_BUSY'],
  retryAfter,
);
const slowBody = errorResponse(
  'The body came too slowly: it may take 30 s (more when QUEUE_TIMEOUT is over 20 s), plus one second for every 500 bytes ' +
    'it has sent. The connection is closed; nothing is kept.',
  ['REQUEST_TIMEOUT'],
);
const invalidId = errorResponse('A path id is not a positive integer, or the path cannot be decoded.', ID_CODES);
const customerNotFound = errorResponse('The customer does not exist.', ['CUSTOMER_NOT_FOUND']);
const documentNotFound = errorResponse(
  'The customer does not exist, or the document does not exist for this customer.',
  ['CUSTOMER_NOT_FOUND', 'DOCUMENT_NOT_FOUND'],
);

const customerPath = [ref('parameters', 'customerId')];
const documentPath = [ref('parameters', 'customerId'), ref('parameters', 'documentId')];
const api = { security: [{ bearerAuth: [] }] };
const open = { security: [] };

/** Headers of every file response (200, 206). */
const fileHeaders = {
  'Content-Length': header('ContentLength'),
  'Content-Disposition': header('ContentDisposition'),
  ETag: header('ETag'),
  'Accept-Ranges': header('AcceptRanges'),
  'Cache-Control': header('CacheControl'),
  'Content-Security-Policy': header('ContentSecurityPolicy'),
};
const fileContent = {
  '*/*': {
    schema: {
      description:
        "The file's bytes (all of them on 200, exactly the requested range on 206), as the document's mimeType. " +
        'A HEAD request gets the same headers and no body.',
    },
  },
};

function fileOperation(method: 'get' | 'head', which: 'download' | 'view'): Json {
  const inline = which === 'view';
  const what = inline
    ? 'inline for PDF, JPEG, PNG, GIF, WebP and plain text, as an attachment otherwise'
    : 'as an attachment';
  return {
    tags: ['documents'],
    operationId: `${method === 'get' ? (inline ? 'viewDocument' : 'downloadDocument') : inline ? 'headDocumentView' : 'headDocumentDownload'}`,
    summary: method === 'get' ? `${inline ? 'View' : 'Download'} a document's file` : `Headers of the ${which} response, without the body`,
    description:
      `The stored file, ${what}; Content-Disposition carries the original name (an ASCII filename and a UTF-8 ` +
      'filename*, RFC 6266). One byte range per request is honoured (bytes=0-99, bytes=100-, bytes=-500); several ' +
      'ranges, or a malformed one, get the whole file. If-Match naming none of the current ETag (strong comparison, ' +
      'or *) gets 412; If-None-Match with the current ETag (weak comparison, or *) gets 304; a Range is honoured only ' +
      'when If-Range, if sent, equals the current ETag.' +
      (method === 'head' ? ' HEAD answers exactly the headers GET would, without a body.' : ''),
    ...api,
    parameters: [
      ...documentPath,
      ref('parameters', 'Range'),
      ref('parameters', 'IfMatch'),
      ref('parameters', 'IfNoneMatch'),
      ref('parameters', 'IfRange'),
    ],
    responses: {
      '200': response('The whole file.', { headers: fileHeaders, content: fileContent }),
      '206': response('The requested range of the file.', {
        headers: { ...fileHeaders, 'Content-Range': header('ContentRange') },
        content: fileContent,
      }),
      '304': response('If-None-Match matched the current ETag: the cached copy is current. No body.', {
        headers: {
          ETag: header('ETag'),
          'Accept-Ranges': header('AcceptRanges'),
          'Cache-Control': header('CacheControl'),
          'Content-Security-Policy': header('ContentSecurityPolicy'),
        },
      }),
      '400': invalidId,
      '401': unauthorized,
      '404': errorResponse(
        'The customer or the document does not exist, or the row exists and its stored file does not (FILE_NOT_FOUND).',
        ['CUSTOMER_NOT_FOUND', 'DOCUMENT_NOT_FOUND', 'FILE_NOT_FOUND'],
      ),
      '409': errorResponse(
        "A document from the old CRM whose file cannot be told apart from another's: its file_path names a file in " +
          'a folder of the upload directory, not the one it would be read from. Not served until an operator names it.',
        ['FILE_AMBIGUOUS'],
      ),
      '412': errorResponse('If-Match names none of the current ETag: the document is not the version the client holds.', ['PRECONDITION_FAILED']),
      '416': errorResponse(
        'The range starts at or past the end of the file (or asks for a zero-length suffix, or the file is empty).',
        ['RANGE_NOT_SATISFIABLE'],
        { 'Content-Range': header('ContentRangeUnsatisfied') },
      ),
      '500': internalError,
      '503': storeUnavailable,
    },
  };
}

const nullable = (s: Json): Json => ({ ...s, type: [s.type as string, 'null'] });

export const openApiDocument: Json = {
  openapi: '3.1.0',
  jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
  info: {
    title: 'CRM document storage',
    version: '1.0.0',
    summary: 'Customer documents for the CRM: metadata in Postgres, files on S3 or local disk.',
    description:
      'JSON in and out; ids are integers. With authentication on (API_TOKENS or JWT_SECRET configured) every route ' +
      'under /api, and /metrics, needs `Authorization: Bearer <token>`; with neither configured the API is open. ' +
      'Every error is `{"error": {"code", "message"}}`: the message is meant for a person, the code for code. ' +
      'A method and path that match no route answer the generic 404 ROUTE_NOT_FOUND (components/responses/RouteNotFound); ' +
      'under /api, an unauthenticated request gets 401 before that. Every response from the routes carries X-Request-Id and ' +
      'X-Content-Type-Options: nosniff; the 400, 408, 413 and 431 that Node answers before any route (a request that is ' +
      'not valid HTTP, headers too slow or too large, oversized chunk extensions) carry both as well. JSON GETs carry a weak ETag and answer If-None-Match ' +
      'with 304, except listings of more than 200 entries, which are written as they are read from the database (an ' +
      'error midway cuts the connection). A browser sends no Authorization header for a plain link, so with authentication on a frontend fetches ' +
      'file responses with the header; it shows only the types /view serves inline and saves the rest.',
  },
  tags: [
    { name: 'system', description: 'Liveness, readiness, metrics and this document; outside /api.' },
    { name: 'customers', description: 'Customers of the CRM.' },
    { name: 'documents', description: "A customer's documents and their files; reachable only through their own customer." },
  ],
  security: [{ bearerAuth: [] }],
  paths: {
    '/health': {
      get: {
        tags: ['system'],
        operationId: 'getHealth',
        summary: 'Liveness: the process and its database answer',
        description: 'Public. Reports the primary store and the database in use; 503 when the database does not answer within 2 s.',
        ...open,
        responses: {
          '200': response('The service and its database answer.', { content: jsonBody(schema('Health')) }),
          '503': response('The database does not answer.', { headers: retryAfter, content: jsonBody(schema('HealthUnavailable')) }),
        },
      },
    },
    '/ready': {
      get: {
        tags: ['system'],
        operationId: 'getReadiness',
        summary: 'Readiness: database, migrations and the primary store',
        description:
          'Public. Ready when the database answers, every migration is applied and the primary store can be reached ' +
          'and written, or, with S3 failing and S3_FALLBACK=local, the local disk that keeps uploads meanwhile ' +
          '(storage "degraded"); the database check gives up after 2 s, each storage check after 3 s. One answer ' +
          'serves every probe for up to 1 s.',
        ...open,
        responses: {
          '200': response('Ready to serve.', { content: jsonBody(schema('Readiness')) }),
          '503': response('Not ready: `checks` names what is failing.', {
            headers: retryAfter,
            content: jsonBody(schema('ReadinessUnavailable')),
          }),
        },
      },
    },
    '/metrics': {
      get: {
        tags: ['system'],
        operationId: 'getMetrics',
        summary: 'Prometheus metrics',
        description:
          'Prometheus text exposition: requests by route template and status, bytes uploaded and downloaded, storage ' +
          "calls, the background job's queue lengths and process metrics. Needs the bearer token when authentication is on.",
        ...api,
        responses: {
          '200': response('The metrics, in the Prometheus text format 0.0.4.', {
            content: { [METRICS_TYPE]: { schema: { type: 'string' } } },
          }),
          '401': unauthorized,
          '500': internalError,
        },
      },
    },
    '/openapi.json': {
      get: {
        tags: ['system'],
        operationId: 'getOpenApiDocument',
        summary: 'This OpenAPI document',
        description: 'Public.',
        ...open,
        responses: {
          '200': response('The OpenAPI 3.1 document of this service.', {
            content: jsonBody({
              type: 'object',
              required: ['openapi', 'info', 'paths'],
              properties: { openapi: { const: '3.1.0' }, info: { type: 'object' }, paths: { type: 'object' } },
            }),
          }),
        },
      },
    },
    '/api/customers': {
      post: {
        tags: ['customers'],
        operationId: 'createCustomer',
        summary: 'Create a customer',
        description: 'Creates a customer from `{name, email?}` (a JSON body of at most 16 kB).',
        ...api,
        requestBody: { required: true, content: jsonBody(schema('NewCustomer')) },
        responses: {
          '201': response('The customer, created.', {
            headers: { Location: header('Location') },
            content: jsonBody(schema('Customer')),
          }),
          '400': errorResponse('The body is not valid JSON (or not valid UTF-8), or not a valid customer.', [
            'VALIDATION_FAILED',
            'INVALID_JSON',
            'REQUEST_ABORTED',
            'BAD_REQUEST',
          ]),
          '401': unauthorized,
          '408': slowBody,
          '413': errorResponse('The body is larger than 16 kB.', ['BODY_TOO_LARGE']),
          '415': errorResponse(
            'The body is not sent as application/json, or has a charset other than UTF-8 or a Content-Encoding that ' +
              'is not supported.',
            ['UNSUPPORTED_MEDIA_TYPE', 'UNSUPPORTED_CHARSET', 'UNSUPPORTED_ENCODING'],
          ),
          '500': internalError,
          '503': databaseUnavailable,
        },
      },
      get: {
        tags: ['customers'],
        operationId: 'listCustomers',
        summary: 'List all customers',
        ...api,
        responses: {
          ...jsonGet('Every customer.', schema('CustomerList')),
          '401': unauthorized,
          '500': internalError,
          '503': databaseUnavailable,
        },
      },
    },
    '/api/customers/{customerId}': {
      parameters: customerPath,
      get: {
        tags: ['customers'],
        operationId: 'getCustomer',
        summary: 'Get one customer',
        ...api,
        responses: {
          ...jsonGet('The customer.', schema('Customer')),
          '400': invalidId,
          '401': unauthorized,
          '404': customerNotFound,
          '500': internalError,
          '503': databaseUnavailable,
        },
      },
      delete: {
        tags: ['customers'],
        operationId: 'deleteCustomer',
        summary: 'Delete a customer, its documents and their stored files',
        description:
          'Deletes the customer and its documents in one transaction and queues their stored files for removal; ' +
          'the files are removed right after, and retried by the background job when the store fails.',
        ...api,
        responses: {
          '204': response('Deleted. No body.'),
          '400': invalidId,
          '401': unauthorized,
          '404': customerNotFound,
          '500': internalError,
          '503': databaseUnavailable,
        },
      },
    },
    '/api/customers/{customerId}/documents': {
      parameters: customerPath,
      get: {
        tags: ['documents'],
        operationId: 'listDocuments',
        summary: "List a customer's documents, newest first",
        description: 'Documents kept on local disk during an S3 outage show `"pendingStorage": "s3"` until they are moved.',
        ...api,
        responses: {
          ...jsonGet("The customer's documents, newest first.", schema('DocumentList')),
          '400': invalidId,
          '401': unauthorized,
          '404': customerNotFound,
          '500': internalError,
          '503': databaseUnavailable,
        },
      },
      post: {
        tags: ['documents'],
        operationId: 'uploadDocument',
        summary: 'Upload a document',
        description:
          'multipart/form-data with exactly one file, in the field `file`, and the optional text fields `category` ' +
          'and `description`. The file streams to the store while it is hashed, counted and checked: its type must ' +
          'be on the allow-list (ALLOWED_FILE_TYPES; the type is the one the extension names, and the part\'s ' +
          'Content-Type only for an extension the service does not know), a type ' +
          'with a signature must start with it, text must not contain binary, and it must not exceed MAX_UPLOAD_SIZE ' +
          '(a body announcing more is refused before it is read). A refused upload keeps nothing. When S3 fails ' +
          'and S3_FALLBACK=local the document is kept on local disk: 201 with `"storage": "local", "pendingStorage": "s3"`.',
        ...api,
        requestBody: {
          required: true,
          content: {
            'multipart/form-data': {
              schema: schema('DocumentUpload'),
              encoding: { file: { contentType: '*/*' } },
            },
          },
        },
        responses: {
          '201': response('The document, stored.', {
            headers: { Location: header('Location') },
            content: jsonBody(schema('Document')),
          }),
          '400': errorResponse(
            'No file, an empty file, an invalid text field, a file in another field or two files, or a body that is not valid multipart.',
            [...ID_CODES, 'FILE_REQUIRED', 'EMPTY_FILE', 'INVALID_FIELD', 'INVALID_UPLOAD', 'INVALID_MULTIPART'],
          ),
          '401': unauthorized,
          '404': customerNotFound,
          '408': errorResponse(
            'The body came too slowly (as for any body), or the form\'s other fields did not follow its file within 60 s. ' +
              'The connection is closed; nothing is kept.',
            ['REQUEST_TIMEOUT'],
          ),
          '413': errorResponse(
            'The file is larger than MAX_UPLOAD_SIZE; nothing of it is kept. Sent as soon as that is known, with ' +
              'Connection: close; the rest of the body is read into nothing for up to 10 s, so that a client still sending sees the answer.',
            ['FILE_TOO_LARGE'],
          ),
          '415': errorResponse(
            'The file type is not allowed, or the content is not what the type says; or the body is not ' +
              'multipart/form-data, or has a Content-Encoding (uploads are read uncompressed), refused before it is read.',
            ['FILE_TYPE_NOT_ALLOWED', 'FILE_CONTENT_MISMATCH', 'UNSUPPORTED_MEDIA_TYPE', 'UNSUPPORTED_ENCODING'],
          ),
          '500': internalError,
          '503': errorResponse(
            'The database does not answer, or S3 failed with S3_FALLBACK=fail; or the service was busy: every database ' +
              'connection stayed taken for QUEUE_TIMEOUT (DATABASE_BUSY), or the memory for uploads to S3 ' +
              '(S3_UPLOAD_MEMORY) did, while the upload waited unread (STORAGE_BUSY). Nothing is kept. Retry after ' +
              'Retry-After seconds.',
            ['DATABASE_UNAVAILABLE', 'DATABASE_BUSY', 'STORAGE_UNAVAILABLE', 'STORAGE_BUSY'],
            retryAfter,
          ),
        },
      },
    },
    '/api/customers/{customerId}/documents/{documentId}': {
      parameters: documentPath,
      get: {
        tags: ['documents'],
        operationId: 'getDocument',
        summary: "Get one document's metadata",
        ...api,
        responses: {
          ...jsonGet('The document.', schema('Document')),
          '400': invalidId,
          '401': unauthorized,
          '404': documentNotFound,
          '500': internalError,
          '503': databaseUnavailable,
        },
      },
      delete: {
        tags: ['documents'],
        operationId: 'deleteDocument',
        summary: 'Delete a document and its stored file',
        description:
          'Deletes the row and queues its stored file in one transaction; the file is removed right after, and ' +
          'retried by the background job when the store fails (the answer is 204 all the same).',
        ...api,
        responses: {
          '204': response('Deleted. No body.'),
          '400': invalidId,
          '401': unauthorized,
          '404': documentNotFound,
          '500': internalError,
          '503': databaseUnavailable,
        },
      },
    },
    '/api/customers/{customerId}/documents/{documentId}/download': {
      parameters: documentPath,
      get: fileOperation('get', 'download'),
      head: fileOperation('head', 'download'),
    },
    '/api/customers/{customerId}/documents/{documentId}/view': {
      parameters: documentPath,
      get: fileOperation('get', 'view'),
      head: fileOperation('head', 'view'),
    },
  },
  components: {
    securitySchemes: {
      bearerAuth: {
        type: 'http',
        scheme: 'bearer',
        description:
          'One of the tokens in API_TOKENS, or a JWT signed HS256 with JWT_SECRET (exp and nbf honoured). With ' +
          'neither configured the API is open and no token is needed.',
      },
    },
    parameters: {
      customerId: {
        name: 'customerId',
        in: 'path',
        required: true,
        description: 'The customer id. Not a positive integer: 400 INVALID_ID; beyond 2147483647: 404.',
        schema: { type: 'integer', minimum: 1 },
      },
      documentId: {
        name: 'documentId',
        in: 'path',
        required: true,
        description:
          "The document id; another customer's document is a 404. Not a positive integer: 400 INVALID_ID; beyond " +
          '2147483647: 404.',
        schema: { type: 'integer', minimum: 1 },
      },
      Range: {
        name: 'Range',
        in: 'header',
        required: false,
        description: 'One byte range: bytes=0-99, bytes=100-, bytes=-500. Several ranges, or a malformed one, get the whole file.',
        schema: { type: 'string', examples: ['bytes=0-99', 'bytes=100-', 'bytes=-500'] },
      },
      IfMatch: {
        name: 'If-Match',
        in: 'header',
        required: false,
        description: 'ETags (strong comparison) or *; when none is the current one, 412.',
        schema: { type: 'string' },
      },
      IfNoneMatch: {
        name: 'If-None-Match',
        in: 'header',
        required: false,
        description: 'ETags (weak comparison) or *; a match gets 304.',
        schema: { type: 'string' },
      },
      IfRange: {
        name: 'If-Range',
        in: 'header',
        required: false,
        description: 'An ETag: the Range is honoured only when it equals the current ETag; otherwise the whole file is sent.',
        schema: { type: 'string' },
      },
    },
    headers: {
      XRequestId: { description: 'The id of this request, as logged.', required: true, schema: { type: 'string', format: 'uuid' } },
      XContentTypeOptions: { description: 'Always nosniff.', required: true, schema: { type: 'string', const: 'nosniff' } },
      RetryAfter: {
        description: 'Seconds after which to retry.',
        required: true,
        schema: { type: 'integer', minimum: 0 },
      },
      WWWAuthenticate: { description: 'The scheme to authenticate with.', required: true, schema: { type: 'string', const: 'Bearer' } },
      Location: { description: 'The path of the created resource.', required: true, schema: { type: 'string', format: 'uri-reference' } },
      ContentLength: { description: 'The bytes of the body (of the range on 206).', required: true, schema: { type: 'integer', minimum: 0 } },
      ContentDisposition: {
        description:
          "inline or attachment, with the original name twice: an ASCII `filename` and the UTF-8 `filename*` (RFC 6266, RFC 8187).",
        required: true,
        schema: { type: 'string', pattern: "^(inline|attachment); filename=\"[^\"]*\"; filename\\*=UTF-8''\\S*$" },
      },
      JsonETag: {
        description: 'A weak validator of the JSON body, for If-None-Match; absent on listings of more than 200 entries, written as they are read.',
        schema: { type: 'string', pattern: '^W/"[^"]+"$' },
      },
      ETag: {
        description: "A strong validator of the file's bytes: the quoted SHA-256 where known.",
        required: true,
        schema: { type: 'string', pattern: '^"[^"]+"$' },
      },
      AcceptRanges: { description: 'Byte ranges are supported.', required: true, schema: { type: 'string', const: 'bytes' } },
      CacheControl: {
        description: 'Never kept in a shared cache; a browser revalidates with the ETag before reuse.',
        required: true,
        schema: { type: 'string', const: 'private, no-cache' },
      },
      ContentSecurityPolicy: {
        description: 'Served content cannot run scripts: default-src none (and sandbox, except for inline PDFs).',
        required: true,
        schema: { type: 'string', pattern: "^default-src 'none'" },
      },
      ContentRange: {
        description: 'The bytes sent and the size of the whole file.',
        required: true,
        schema: { type: 'string', pattern: '^bytes \\d+-\\d+/\\d+$' },
      },
      ContentRangeUnsatisfied: {
        description: 'The size of the whole file: bytes */<size>.',
        required: true,
        schema: { type: 'string', pattern: '^bytes \\*/\\d+$' },
      },
    },
    responses: {
      RouteNotFound: errorResponse('No route matches the method and path.', ['ROUTE_NOT_FOUND']),
    },
    schemas: {
      StorageName: { type: 'string', enum: ['local', 's3'], description: 'Where a file is stored.' },
      Customer: {
        type: 'object',
        required: ['id', 'name', 'email', 'createdAt'],
        additionalProperties: false,
        properties: {
          id: { type: 'integer', minimum: 1 },
          name: { type: 'string' },
          email: { type: ['string', 'null'], description: 'As stored; null when there is none.' },
          createdAt: { type: ['string', 'null'], format: 'date-time', description: 'Null for rows of the old CRM that lack it.' },
        },
        examples: [{ id: 1, name: 'Acme GmbH', email: 'office@acme.example', createdAt: '2026-11-25T09:40:18.695Z' }],
      },
      NewCustomer: {
        type: 'object',
        required: ['name'],
        properties: {
          name: {
            type: 'string',
            minLength: 1,
            maxLength: 255,
            pattern: '^[^\\u0000-\\u001f\\u007f-\\u009f]*$',
            description: 'Trimmed; must not be empty or contain control characters (C0, DEL, C1) or unpaired surrogates.',
          },
          email: {
            anyOf: [{ type: 'string', format: 'email', maxLength: 255 }, { type: 'string', pattern: '^\\s*$' }, { type: 'null' }],
            description: 'Trimmed; empty or null means none.',
          },
        },
      },
      CustomerList: {
        type: 'object',
        required: ['customers'],
        additionalProperties: false,
        properties: { customers: { type: 'array', items: schema('Customer') } },
      },
      Document: {
        type: 'object',
        required: [
          'id',
          'customerId',
          'fileName',
          'storedFileName',
          'mimeType',
          'size',
          'sha256',
          'storage',
          'pendingStorage',
          'category',
          'description',
          'uploadedAt',
        ],
        additionalProperties: false,
        properties: {
          id: { type: 'integer', minimum: 1 },
          customerId: { type: 'integer', minimum: 1 },
          fileName: {
            type: 'string',
            description:
              'The name as uploaded (UTF-8), cleaned: without folders, control characters, bidi overrides, zero-width ' +
              'spaces or trailing dots and spaces, line separators made spaces; at most 255 characters, its extension kept.',
          },
          storedFileName: {
            type: ['string', 'null'],
            description: 'The name the server stored the file under; null for old rows that name no file.',
          },
          mimeType: { type: 'string', description: 'The type the file is served as.' },
          size: nullable({ type: 'integer', minimum: 0, description: 'Bytes; null where the old CRM did not record it.' }),
          sha256: nullable({ type: 'string', pattern: '^[0-9a-f]{64}$', description: 'Hex SHA-256 of the bytes; null for documents from before this service.' }),
          storage: schema('StorageName'),
          pendingStorage: {
            type: ['string', 'null'],
            enum: ['s3', null],
            description: "'s3' while a document kept on local disk during an S3 outage waits to be moved there; null otherwise.",
          },
          category: { type: ['string', 'null'] },
          description: { type: ['string', 'null'] },
          uploadedAt: { type: ['string', 'null'], format: 'date-time' },
        },
        examples: [
          {
            id: 7,
            customerId: 1,
            fileName: 'Vertrag März.pdf',
            storedFileName: '019abc12-3def-7456-89ab-cdef01234567.pdf',
            mimeType: 'application/pdf',
            size: 48213,
            sha256: '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
            storage: 's3',
            pendingStorage: null,
            category: 'contracts',
            description: 'Signed 2026 agreement',
            uploadedAt: '2026-11-25T09:40:18.695Z',
          },
        ],
      },
      DocumentList: {
        type: 'object',
        required: ['documents'],
        additionalProperties: false,
        properties: { documents: { type: 'array', items: schema('Document') } },
      },
      DocumentUpload: {
        type: 'object',
        required: ['file'],
        properties: {
          file: {
            type: 'string',
            contentMediaType: 'application/octet-stream',
            description:
              'The file (binary), exactly one. Its type is the one its file name\'s extension names; its part Content-Type ' +
              'counts only for an extension the service does not know.',
          },
          category: { type: 'string', maxLength: 100, description: 'Trimmed; empty means none.' },
          description: { type: 'string', maxLength: 2000, description: 'Trimmed; empty means none. Line breaks are stored as \\n (a form\'s \\r\\n counts one character).' },
        },
      },
      ErrorDetail: {
        type: 'object',
        required: ['code', 'message'],
        additionalProperties: false,
        properties: {
          code: {
            type: 'string',
            description:
              'Stable, for code to branch on. 400: INVALID_ID, VALIDATION_FAILED, INVALID_JSON, FILE_REQUIRED, ' +
              'EMPTY_FILE, INVALID_FIELD, INVALID_UPLOAD, INVALID_MULTIPART, REQUEST_ABORTED, BAD_REQUEST. 401: ' +
              'AUTH_REQUIRED, INVALID_TOKEN, TOKEN_EXPIRED, TOKEN_NOT_YET_VALID. 404: CUSTOMER_NOT_FOUND, ' +
              'DOCUMENT_NOT_FOUND, FILE_NOT_FOUND, ROUTE_NOT_FOUND. 405: METHOD_NOT_ALLOWED (CONNECT). 412: PRECONDITION_FAILED (If-Match). 413: FILE_TOO_LARGE, BODY_TOO_LARGE. 415: ' +
              'FILE_TYPE_NOT_ALLOWED, FILE_CONTENT_MISMATCH, UNSUPPORTED_MEDIA_TYPE, UNSUPPORTED_CHARSET, ' +
              'UNSUPPORTED_ENCODING. 408: REQUEST_TIMEOUT (a body too slow). 416: RANGE_NOT_SATISFIABLE. 417: EXPECTATION_FAILED (an ' +
              'Expect other than 100-continue). 503: ' +
              'DATABASE_UNAVAILABLE, STORAGE_UNAVAILABLE, DATABASE_BUSY, STORAGE_BUSY (with Retry-After); NOT_READY on /ready. 500: INTERNAL_ERROR. Each response lists the codes it can ' +
              'carry. A request that is not valid HTTP is refused by the HTTP parser, before any route, with 400 ' +
              'BAD_REQUEST, 408 REQUEST_TIMEOUT or 431 HEADERS_TOO_LARGE; so is a CONNECT (405), and an Expect other ' +
              'than 100-continue (417). 400 REQUEST_INCOMPLETE comes from the parser too, at once, when the client ' +
              'closes its side before its request is complete, even while a route reads the body.',
          },
          message: { type: 'string', description: 'For a person to read.' },
        },
      },
      Error: {
        type: 'object',
        required: ['error'],
        additionalProperties: false,
        properties: { error: schema('ErrorDetail') },
        examples: [{ error: { code: 'CUSTOMER_NOT_FOUND', message: 'Customer 42 does not exist' } }],
      },
      Health: {
        type: 'object',
        required: ['status', 'storage', 'database'],
        additionalProperties: false,
        properties: {
          status: { const: 'ok' },
          storage: schema('StorageName'),
          database: { type: 'string', enum: ['postgres', 'pglite'] },
        },
      },
      HealthUnavailable: {
        type: 'object',
        required: ['status', 'storage', 'database', 'error'],
        additionalProperties: false,
        properties: {
          status: { const: 'unavailable' },
          storage: schema('StorageName'),
          database: { type: 'string', enum: ['postgres', 'pglite'] },
          error: { allOf: [schema('ErrorDetail'), { type: 'object', properties: { code: { const: 'DATABASE_UNAVAILABLE' } } }] },
        },
      },
      Readiness: {
        type: 'object',
        required: ['status', 'checks'],
        additionalProperties: false,
        properties: {
          status: { const: 'ready' },
          checks: {
            type: 'object',
            required: ['database', 'migrations', 'storage'],
            additionalProperties: false,
            properties: {
              database: { const: 'ok' },
              migrations: { const: 'ok' },
              storage: {
                type: 'string',
                enum: ['ok', 'degraded'],
                description: "'degraded': S3 fails and uploads are kept on local disk meanwhile (S3_FALLBACK=local).",
              },
            },
          },
        },
      },
      ReadinessCheck: { type: 'string', enum: ['ok', 'failing'] },
      StorageReadinessCheck: {
        type: 'string',
        enum: ['ok', 'degraded', 'failing'],
        description: "'degraded': S3 fails and uploads are kept on local disk meanwhile (S3_FALLBACK=local), which alone keeps the instance ready.",
      },
      ReadinessUnavailable: {
        type: 'object',
        required: ['status', 'checks', 'error'],
        additionalProperties: false,
        properties: {
          status: { const: 'unavailable' },
          checks: {
            type: 'object',
            required: ['database', 'migrations', 'storage'],
            additionalProperties: false,
            properties: {
              database: schema('ReadinessCheck'),
              migrations: schema('ReadinessCheck'),
              storage: schema('StorageReadinessCheck'),
            },
          },
          error: { allOf: [schema('ErrorDetail'), { type: 'object', properties: { code: { const: 'NOT_READY' } } }] },
        },
      },
    },
  },
};
