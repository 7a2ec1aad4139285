import { v7 as uuidv7 } from 'uuid';

/** At most what customer_documents.file_name holds. */
const MAX_LENGTH = 255;
const EXTENSION = /\.([A-Za-z0-9]{1,10})$/;

/**
 * Characters a file name must not keep: control characters; the bidirectional controls that make a name read as
 * another ("invoice\u202Efdp.exe" shows as "invoiceexe.pdf"); and the invisible zero-width space, word joiner and
 * BOM. The zero-width (non-)joiners stay inside a name: Persian, Indic scripts and emoji sequences need them.
 */
const UNSHOWABLE = /[\p{Cc}\u061c\u200b\u200e\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]/gu;
/** Line and paragraph separators break a name across lines in a listing or a CSV export: a space instead. */
const SEPARATORS = /[\p{Zl}\p{Zp}]/gu;
/**
 * Dots, spaces and joiners at the end: Windows drops trailing dots and spaces when it saves a file, and any of
 * them after "a.pdf" hides the extension the download name is judged by ("a.pdf." would be saved as "a.pdf..pdf").
 */
const TRAILING = /[.\s\u200c\u200d]/u;

/**
 * `name` without what TRAILING matches at its end. A loop, not `/[...]+$/`: the regex tries every run of such
 * characters again from each of its positions, and a name of 16,000 dots and spaces then took a quarter of a second
 * of the event loop per upload. Each character TRAILING matches is a single UTF-16 unit.
 */
function trimTrailing(name: string): string {
  let end = name.length;
  while (end > 0 && TRAILING.test(name[end - 1])) end--;
  return name.slice(0, end);
}

/**
 * The name a document is listed and downloaded under: what the client sent, minus anything that could not be a
 * file's name (folders, the characters above, dots, spaces and joiners at its end), at most 255 characters, its
 * extension kept when cut.
 */
export function cleanFileName(raw: string | undefined): string {
  const base = (raw ?? '').normalize('NFC').split(/[/\\]/).pop() ?? '';
  const cleaned = base.replace(UNSHOWABLE, '').replace(SEPARATORS, ' ').trim();
  const trimmed = trimTrailing(cleaned) || 'file';
  const chars = Array.from(trimmed);
  if (chars.length <= MAX_LENGTH) return trimmed;
  const extension = EXTENSION.exec(trimmed)?.[0] ?? '';
  // The cut can end the stem in a dot or a space again.
  return trimTrailing(chars.slice(0, MAX_LENGTH - extension.length).join('')) + extension;
}

/** The extension a stored name keeps, so objects in a bucket listing say what they are; '' when it is unusual. */
export function storedExtension(fileName: string): string {
  const match = EXTENSION.exec(fileName);
  return match ? `.${match[1].toLowerCase()}` : '';
}

/** The names this service stores files under: a UUIDv7 (unique, and in time order in a listing) and the extension. */
const STORED_NAME = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}(\.[a-z0-9]{1,10})?$/;

/** A new document's stored name: made by the server, never from the user's (STYLE.md). */
export function newStoredFileName(fileName: string): string {
  return `${uuidv7()}${storedExtension(fileName)}`;
}

/**
 * Whether a file could be one this service stored. UPLOAD_DIR is also the old CRM's uploads folder, which may hold
 * that program's other files (avatars, exports): a file no row claims is only this service's to remove when it
 * carries such a name.
 */
export function isStoredFileName(name: string): boolean {
  return STORED_NAME.test(name);
}
