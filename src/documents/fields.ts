import { BadRequestError } from '../errors';

const FIELD_LIMITS = { category: 100, description: 2000 } as const;

/** A text field of an upload's form, trimmed; null when absent or empty. */
export function textField(fields: Record<string, unknown>, name: keyof typeof FIELD_LIMITS): string | null {
  const value = fields[name];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw new BadRequestError('INVALID_FIELD', `${name} must be a single text value`);
  const text = value.trim();
  // Postgres text cannot hold NUL; refused here, it is the client's mistake rather than a failed insert.
  if (text.includes('\u0000')) throw new BadRequestError('INVALID_FIELD', `${name} must not contain NUL characters`);
  if (text.length > FIELD_LIMITS[name]) {
    throw new BadRequestError('INVALID_FIELD', `${name} must be at most ${FIELD_LIMITS[name]} characters`);
  }
  return text || null;
}
