/**
 * Run as a process of its own (`node --import tsx`, with the service's environment): starts the service as
 * server.ts does, then prints, as JSON, the packages under node_modules that the process has loaded, and stops.
 * For test/footprint.test.ts, which cannot look into another process's require.cache.
 */
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { startService } from '../../src/server';

async function main(): Promise<void> {
  const service = await startService(loadConfig(process.env), createLogger('silent'));
  const packages = new Set<string>();
  for (const file of Object.keys(require.cache)) {
    // The innermost package: a dependency nested under another's node_modules is reported as itself.
    const match = /.*node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file);
    if (match) packages.add(match[1]);
  }
  await service.close();
  process.stdout.write(JSON.stringify([...packages].sort()));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
