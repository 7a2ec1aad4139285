import { freePort, runScript } from './helpers/process';

describe('a service that cannot start says why', () => {
  test('a database that refuses connections: exit 1, and the cause on the line, not only "not available"', async () => {
    const port = await freePort(); // nothing listens there
    const { code, stderr } = await runScript('src/server.ts', [], {
      NODE_ENV: 'development',
      LOG_LEVEL: 'silent',
      PORT: '0',
      DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/crm`,
    });
    expect(code).toBe(1);
    expect(stderr).toContain(`startup failed: The database is not available; try again shortly: connect ECONNREFUSED 127.0.0.1:${port}`);
  }, 60_000); // runScript's own limit is 50 s
});
