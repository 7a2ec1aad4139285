import { BadRequestError, customerNotFound, documentNotFound } from '../errors';

const INT4_MAX = 2_147_483_647;

/**
 * A path id as the integer the database holds. Not a positive integer: 400. Beyond what an INTEGER column can
 * hold: 404 without asking the database, which would answer an out-of-range number with an error.
 */
export function parseId(value: unknown, kind: 'customer' | 'document'): number {
  const name = kind === 'customer' ? 'customerId' : 'documentId';
  // Digits, not all of them zeros: 0 is no more an id than -1 is.
  if (typeof value !== 'string' || !/^0*[1-9]\d*$/.test(value)) {
    throw new BadRequestError('INVALID_ID', `${name} must be a positive integer`);
  }
  const id = Number(value);
  if (id > INT4_MAX) throw kind === 'customer' ? customerNotFound(value) : documentNotFound(value);
  return id;
}
