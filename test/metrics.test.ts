import { routeTemplate } from '../src/metrics';

describe('route labels of the metrics', () => {
  test.each([
    ['/api/customers/12/documents/7/download', '/:documentId/download', '/api/customers/:customerId/documents/:documentId/download'],
    ['/api/customers/12/documents', '/', '/api/customers/:customerId/documents'],
    ['/api/customers/12', '/:customerId', '/api/customers/:customerId'],
    // Express matches paths case-insensitively, and ids it refuses still reach a route: neither makes a new series.
    ['/api/Customers/999/DOCUMENTS/abc', '/:documentId', '/api/customers/:customerId/documents/:documentId'],
    ['/api/customers/not-a-number/documents', '/', '/api/customers/:customerId/documents'],
    ['/health', '/health', '/health'],
  ])('%s is counted as %s', (url, routePath, expected) => {
    expect(routeTemplate(url, routePath === '/' ? '/' : routePath)).toBe(expected);
  });
});
