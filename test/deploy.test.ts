import fs from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import { serviceNodeFlags } from './helpers/process';

const ROOT = path.resolve(__dirname, '..');
const read = (file: string) => fs.readFile(path.join(ROOT, file), 'utf8');

/** Every variable .env.example documents: what a deploy must be able to set. */
async function documentedVariables(): Promise<string[]> {
  return [...(await read('.env.example')).matchAll(/^([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]);
}

describe('deploy configuration', () => {
  test('render.yaml: npm start\'s node command, /ready as health check, every variable of .env.example, no secret values', async () => {
    const text = await read('render.yaml');
    const blueprint = parse(text);
    const [web] = blueprint.services;
    expect(web.startCommand).toBe(['node', ...serviceNodeFlags(), 'dist/server.js'].join(' '));
    expect(web.healthCheckPath).toBe('/ready');
    for (const name of await documentedVariables()) expect(text).toContain(name);
    for (const secret of ['AWS_SECRET_ACCESS_KEY', 'AWS_ACCESS_KEY_ID', 'JWT_SECRET']) {
      const entry = web.envVars.find((v: { key: string }) => v.key === secret);
      if (entry) expect(entry.value).toBeUndefined();
    }
    expect(web.envVars.find((v: { key: string }) => v.key === 'DATABASE_URL').fromDatabase).toBeDefined();
  });

  test('README names the deploy command with npm start\'s node flags', async () => {
    expect(await read('README.md')).toContain(['node', ...serviceNodeFlags(), 'dist/server.js'].join(' '));
  });

  test('railway.json: built from the Dockerfile, /ready as health check, a draining time above SHUTDOWN_TIMEOUT', async () => {
    const railway = JSON.parse(await read('railway.json'));
    expect(railway.build.builder).toBe('DOCKERFILE');
    expect(railway.deploy.healthcheckPath).toBe('/ready');
    expect(railway.deploy.drainingSeconds).toBeGreaterThan(25);
  });

  test('Dockerfile: multi-stage, production dependencies only, non-root, node as PID 1 with npm start\'s flags, migrations included', async () => {
    const text = await read('Dockerfile');
    expect(text.match(/^FROM /gm)).toHaveLength(2);
    expect(text).toContain('npm ci --omit=dev');
    expect(text).toMatch(/^USER node$/m);
    expect(text).toContain('COPY migrations ./migrations');
    expect(JSON.parse(/^CMD (\[.*\])$/m.exec(text)![1])).toEqual(['node', ...serviceNodeFlags(), 'dist/server.js']);
  });
});
