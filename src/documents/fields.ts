import { BadRequestError } from '../errors';

const FIELD_LIMITS = { category: 100, description: 2000 } as const;
/**
 * Control characters a field refuses (C0, DEL and C1): they would reach the CRM's screens and its exports as they
 * are (an escape sequence, a form feed), and Postgres text cannot hold NUL. A description keeps its tabs and line
 * breaks.
 */
const CONTROL = {
  category: /\p{Cc}/u,
  description: /(?![\t\n\r])\p{Cc}/u,
} as const;

/**
 * A text field of an upload's form, trimmed; null when absent or empty. Line breaks are stored as \n: a browser's
 * form sends each of a <textarea>'s as \r\n (HTML's multipart/form-data rules), which would otherwise come back as
 * \r\n and count two characters each against the limit.
 */
export function textField(fields: Record<string, unknown>, name: keyof typeof FIELD_LIMITS): string | null {
  const value = fields[name];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw new BadRequestError('INVALID_FIELD', `${name} must be a single text value`);
  const text = value.replace(/\r\n?/g, '\n').trim();
  if (CONTROL[name].test(text)) throw new BadRequestError('INVALID_FIELD', `${name} must not contain control characters`);
  // Characters as README and the OpenAPI document count them (code points): an emoji is one, not two.
  if (Array.from(text).length > FIELD_LIMITS[name]) {
    throw new BadRequestError('INVALID_FIELD', `${name} must be at most ${FIELD_LIMITS[name]} characters`);
  }
  return text || null;
}
