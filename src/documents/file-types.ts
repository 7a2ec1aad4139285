import mime from 'mime-types';

/**
 * What a CRM keeps, and how to recognise it. A type with a `signature` must start with it (an executable renamed
 * to invoice.pdf is refused); a `text` type must not contain NUL bytes, which every binary executable does.
 * A hand-written table because it is short and exact for this list; file-type, the library that does this in
 * general, is ESM-only and cannot be loaded by the service's CommonJS build or by jest without experimental flags.
 */
interface TypeRule {
  readonly signature?: (head: Buffer) => boolean;
  readonly text?: true;
}

const startsWith = (...sigs: (string | number[])[]) => (head: Buffer) =>
  sigs.some((s) => {
    const b = typeof s === 'string' ? Buffer.from(s, 'latin1') : Buffer.from(s);
    return head.length >= b.length && head.subarray(0, b.length).equals(b);
  });

const OLE2 = startsWith([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]); // .doc .xls .ppt .msg
const ZIP = startsWith('PK\x03\x04', 'PK\x05\x06', 'PK\x07\x08'); // .zip and every OOXML / OpenDocument file
// PDF readers accept the header anywhere in the first 1024 bytes, and real scanners emit files that use that.
const PDF = (head: Buffer) => head.subarray(0, 1024).includes('%PDF-', 0, 'latin1');
const HEIF_BRANDS = new Set(['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'mif1', 'msf1', 'avif']);
const HEIF = (head: Buffer) =>
  head.length >= 12 && head.toString('latin1', 4, 8) === 'ftyp' && HEIF_BRANDS.has(head.toString('latin1', 8, 12));
const WEBP = (head: Buffer) =>
  head.length >= 12 && head.toString('latin1', 0, 4) === 'RIFF' && head.toString('latin1', 8, 12) === 'WEBP';

const RULES: Readonly<Record<string, TypeRule>> = {
  'application/pdf': { signature: PDF },
  'application/msword': { signature: OLE2 },
  'application/vnd.ms-excel': { signature: OLE2 },
  'application/vnd.ms-powerpoint': { signature: OLE2 },
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': { signature: ZIP },
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': { signature: ZIP },
  'application/vnd.openxmlformats-officedocument.presentationml.presentation': { signature: ZIP },
  'application/vnd.oasis.opendocument.text': { signature: ZIP },
  'application/vnd.oasis.opendocument.spreadsheet': { signature: ZIP },
  'application/vnd.oasis.opendocument.presentation': { signature: ZIP },
  'application/rtf': { signature: startsWith('{\\rtf') },
  'text/plain': { text: true },
  'text/csv': { text: true },
  'image/jpeg': { signature: startsWith([0xff, 0xd8, 0xff]) },
  'image/png': { signature: startsWith([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]) },
  'image/gif': { signature: startsWith('GIF87a', 'GIF89a') },
  'image/webp': { signature: WEBP },
  'image/heic': { signature: HEIF },
  'image/heif': { signature: HEIF },
  'image/tiff': { signature: startsWith('II*\x00', 'MM\x00*') },
  'application/zip': { signature: ZIP },
  'message/rfc822': { text: true },
  'application/vnd.ms-outlook': { signature: OLE2 },
};

export const DEFAULT_ALLOWED_TYPES: readonly string[] = Object.freeze(Object.keys(RULES));

/** Types browsers send for files they do not recognise: the extension decides instead. */
const GENERIC = new Set(['', 'application/octet-stream', 'binary/octet-stream', 'application/unknown']);

/** Other names browsers and mail clients use for the types above. */
const ALIASES: Readonly<Record<string, string>> = {
  'image/jpg': 'image/jpeg',
  'image/pjpeg': 'image/jpeg',
  'application/x-pdf': 'application/pdf',
  'application/x-zip-compressed': 'application/zip',
  'application/x-zip': 'application/zip',
  'text/rtf': 'application/rtf',
  'text/x-csv': 'text/csv',
  'application/csv': 'text/csv',
  'text/comma-separated-values': 'text/csv',
  'image/x-tiff': 'image/tiff',
};

/** A MIME type without parameters, lowercased, under its usual name. */
export function normaliseMimeType(type: string | undefined): string {
  const t = (type ?? '').split(';')[0].trim().toLowerCase();
  return ALIASES[t] ?? t;
}

const MIME_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/;

/** Whether `type` (normalised) is a MIME type, and so fits in a Content-Type header. */
export const isMimeType = (type: string) => MIME_TYPE.test(type);

/**
 * The type a file is stored and served as. A known extension decides: it is what the user's operating system will
 * go by when the file is opened, so a script named invoice.bat is a script (and refused) whatever type the browser
 * claims, and a CSV that Windows browsers label application/vnd.ms-excel is CSV. Without a known extension, the
 * browser's claim decides, normalised; a generic claim leaves application/octet-stream.
 */
export function resolveMimeType(declared: string | undefined, fileName: string): string {
  const byExtension = mime.lookup(fileName);
  if (byExtension) return normaliseMimeType(byExtension);
  const claimed = normaliseMimeType(declared);
  return GENERIC.has(claimed) ? 'application/octet-stream' : claimed;
}

/**
 * The name a file is downloaded under. Kept when its extension is of an accepted type; otherwise the stored type's
 * extension is appended, so that opening the download cannot run it as something else: notes.ps1 stored as
 * text/plain is saved as notes.ps1.txt.
 */
export function downloadName(fileName: string, mimeType: string, allowedTypes: ReadonlySet<string>): string {
  const byExtension = mime.lookup(fileName);
  if (byExtension && allowedTypes.has(normaliseMimeType(byExtension))) return fileName;
  const extension = mime.extension(mimeType);
  return extension && extension !== 'bin' ? `${fileName}.${extension}` : fileName;
}

/** How many leading bytes `contentMatchesType` needs to see (fewer when the file is shorter). */
export const SNIFF_BYTES = 8192;

/** Whether the first bytes of a file fit its type. Types outside the table (from ALLOWED_FILE_TYPES) pass. */
export function contentMatchesType(mimeType: string, head: Buffer): boolean {
  const rule = RULES[mimeType];
  if (!rule) return true;
  if (rule.signature) return rule.signature(head);
  if (rule.text) return isText(head);
  return true;
}

function isText(head: Buffer): boolean {
  // UTF-16 text legitimately contains NUL bytes; its byte-order mark says so.
  if (startsWith([0xff, 0xfe], [0xfe, 0xff])(head)) return true;
  return !head.includes(0);
}

/** Types a browser may render in place of the page: no scripts can run in them. */
const INLINE_SAFE = new Set(['application/pdf', 'image/jpeg', 'image/png', 'image/gif', 'image/webp', 'text/plain']);

export function isInlineSafe(mimeType: string): boolean {
  return INLINE_SAFE.has(mimeType);
}
