/** At most what customer_documents.file_name holds. */
const MAX_LENGTH = 255;
const EXTENSION = /\.([A-Za-z0-9]{1,10})$/;

/**
 * The name a document is listed and downloaded under: what the client sent, minus anything that could not be a
 * file's name (folders, control characters) and the bidirectional controls that make a name read as another
 * ("invoice\u202Efdp.exe" shows as "invoiceexe.pdf"), at most 255 characters, its extension kept when cut.
 */
export function cleanFileName(raw: string | undefined): string {
  const base = (raw ?? '').normalize('NFC').split(/[/\\]/).pop() ?? '';
  const cleaned = base.replace(/[\p{Cc}\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu, '').trim() || 'file';
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
