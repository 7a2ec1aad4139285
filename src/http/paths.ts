/**
 * Where a resource lives, as app.ts mounts the routers. A Location header names it this one way: Express matches
 * paths case-insensitively and ids parse with leading zeros, so a request's own spelling ("/api/Customers/0001")
 * would hand the frontend a second URL for the same thing.
 */
export const customerPath = (id: number) => `/api/customers/${id}`;
export const documentPath = (customerId: number, id: number) => `${customerPath(customerId)}/documents/${id}`;
