/**
 * RFC 6266 Content-Disposition carrying a file's name twice: `filename` for clients that only read ASCII
 * (accents folded, anything else replaced), and `filename*` with the exact UTF-8 name (RFC 8187). The stored name
 * has no slashes, but folding can make some ("／" becomes "/", "‥" ".."): a client that joins the fallback onto a
 * folder must not be led out of it.
 */
export function contentDisposition(type: 'inline' | 'attachment', fileName: string): string {
  const ascii = fileName
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^\x20-\x7e]|["\\%/]/gu, '_');
  const encoded = encodeURIComponent(fileName).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `${type}; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}
