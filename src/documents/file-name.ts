/**
 * The name a document is listed and downloaded under: what the client sent, minus anything that could not be a
 * file's name (folders, control characters), at most 255 characters as customer_documents.file_name allows.
 */
export function cleanFileName(raw: string | undefined): string {
  const base = (raw ?? '').normalize('NFC').split(/[/\\]/).pop() ?? '';
  const cleaned = base.replace(/[\u0000-\u001f\u007f]/g, '').trim();
  return Array.from(cleaned || 'file').slice(0, 255).join('');
}

/** The extension a stored name keeps, so objects in a bucket listing say what they are; '' when it is unusual. */
export function storedExtension(fileName: string): string {
  const match = /\.([A-Za-z0-9]{1,10})$/.exec(fileName);
  return match ? `.${match[1].toLowerCase()}` : '';
}
