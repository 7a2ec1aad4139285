/** At most what customer_documents.file_name holds. */
const MAX_LENGTH = 255;
const EXTENSION = /\.([A-Za-z0-9]{1,10})$/;

/**
 * Characters a file name must not keep: control characters; line and paragraph separators, which break a name
 * across lines in a listing or a CSV export; the bidirectional controls that make a name read as another
 * ("invoice\u202Efdp.exe" shows as "invoiceexe.pdf"); and the invisible zero-width space, word joiner and BOM.
 * The zero-width (non-)joiners stay: Persian, Indic scripts and emoji sequences need them.
 */
const UNSHOWABLE = /[\p{Cc}\p{Zl}\p{Zp}\u061c\u200b\u200e\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]/gu;

/**
 * The name a document is listed and downloaded under: what the client sent, minus anything that could not be a
 * file's name (folders, the characters of UNSHOWABLE, trailing dots and spaces), at most 255 characters, its
 * extension kept when cut.
 */
export function cleanFileName(raw: string | undefined): string {
  const base = (raw ?? '').normalize('NFC').split(/[/\\]/).pop() ?? '';
  const cleaned =
    base
      .replace(UNSHOWABLE, '')
      // Trailing dots and spaces: Windows drops them when it saves the file, and "a.pdf." would hide the extension
      // the download name is judged by (it would be saved as "a.pdf..pdf").
      .replace(/[.\s]+$/u, '')
      .trim() || 'file';
  const chars = Array.from(cleaned);
  if (chars.length <= MAX_LENGTH) return cleaned;
  const extension = EXTENSION.exec(cleaned)?.[0] ?? '';
  return chars.slice(0, MAX_LENGTH - extension.length).join('') + extension;
}

/** The extension a stored name keeps, so objects in a bucket listing say what they are; '' when it is unusual. */
export function storedExtension(fileName: string): string {
  const match = EXTENSION.exec(fileName);
  return match ? `.${match[1].toLowerCase()}` : '';
}
