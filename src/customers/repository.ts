import { pageOf, type Queryable } from '../db';

export interface CustomerRow {
  id: number;
  name: string;
  email: string | null;
  created_at: Date | null;
}

const COLUMNS = 'id, name, email, created_at';

export async function insertCustomer(q: Queryable, name: string, email: string | null): Promise<CustomerRow> {
  const [row] = await q.query<CustomerRow>(
    `INSERT INTO customers (name, email) VALUES ($1, $2) RETURNING ${COLUMNS}`,
    [name, email],
  );
  return row;
}

/**
 * Customers in id order, `limit` at a time after the id `afterId` (keyset: every page is one index range), and
 * whether more follow.
 */
export async function listCustomersPage(q: Queryable, afterId: number, limit: number): Promise<{ rows: CustomerRow[]; more: boolean }> {
  return pageOf(await q.query<CustomerRow>(`SELECT ${COLUMNS} FROM customers WHERE id > $1 ORDER BY id LIMIT $2`, [afterId, limit + 1]), limit);
}

export async function findCustomer(q: Queryable, id: number): Promise<CustomerRow | undefined> {
  const [row] = await q.query<CustomerRow>(`SELECT ${COLUMNS} FROM customers WHERE id = $1`, [id]);
  return row;
}

/**
 * Locks the customer row until the transaction ends. An upload inserting a document for this customer meanwhile
 * waits on it (its foreign key check takes a share lock), then fails once the customer is gone, so no document
 * row can slip in between reading a customer's files and deleting the customer.
 */
export async function lockCustomer(q: Queryable, id: number): Promise<boolean> {
  const rows = await q.query('SELECT id FROM customers WHERE id = $1 FOR UPDATE', [id]);
  return rows.length > 0;
}

export async function deleteCustomer(q: Queryable, id: number): Promise<boolean> {
  const rows = await q.query('DELETE FROM customers WHERE id = $1 RETURNING id', [id]);
  return rows.length > 0;
}
