import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export interface ServerProcess {
  readonly port: number;
  readonly url: string;
  readonly child: ChildProcess;
  /** Every line the process logged so far. */
  readonly logs: string[];
  /** Resolves with the exit code (null when killed by a signal) and the signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
}

const ROOT = path.resolve(__dirname, '../..');

/**
 * A port for a service process, from below the kernel's ephemeral range. A port the OS hands out for `listen(0)` is
 * free only until the child binds it, seconds later (tsx, the database), and in those seconds every other jest
 * worker binds ephemeral ports by the hundred (supertest listens on one per request, clients connect from them). One
 * taken there made the child exit with EADDRINUSE while /health was answered by another worker's app on that port,
 * and a test went on against a service that was gone. Nothing binds below the ephemeral range unasked: each worker
 * draws from its own stretch of it, at random, and checks the port is free.
 */
export async function freePort(): Promise<number> {
  const worker = Number(process.env.JEST_WORKER_ID ?? 1) % WORKER_STRETCHES;
  const stretch = Math.floor((ephemeralStart() - LOWEST_PORT) / WORKER_STRETCHES);
  for (;;) {
    const port = LOWEST_PORT + worker * stretch + Math.floor(Math.random() * stretch);
    if (await isFree(port)) return port;
  }
}

const LOWEST_PORT = 10_000;
const WORKER_STRETCHES = 8;

function ephemeralStart(): number {
  try {
    const start = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (start > LOWEST_PORT + WORKER_STRETCHES * 100) return start;
  } catch {
    // not Linux
  }
  // The IANA ephemeral range's start. Where the kernel's range leaves no room below it, draws can fall inside it,
  // as listen(0)'s did.
  return 49_152;
}

/** Free on every interface, as the service listens (`server.listen(port)`). */
async function isFree(port: number): Promise<boolean> {
  const server = net.createServer();
  const listening = new Promise<boolean>((resolve) => {
    server.once('listening', () => resolve(true));
    server.once('error', () => resolve(false));
  });
  server.listen(port);
  if (!(await listening)) return false;
  server.close();
  await once(server, 'close');
  return true;
}

/**
 * The node flags the service runs with: those of `npm start` (`node <flags> dist/server.js`), which the Dockerfile and
 * render.yaml repeat (test/deploy.test.ts keeps them equal).
 */
export function serviceNodeFlags(): string[] {
  const { scripts } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const [node, ...rest] = scripts.start.split(/\s+/);
  if (node !== 'node' || rest.pop() !== 'dist/server.js') throw new Error(`npm start is not "node <flags> dist/server.js": ${scripts.start}`);
  return rest;
}

/**
 * The service as ops run it: its own process (`node src/server.ts` through tsx, so no build is needed, with the node
 * flags of `npm start`), configured by environment only. Resolves once /health answers. The test kills it however
 * it likes (SIGTERM, SIGKILL).
 */
export async function startServerProcess(env: Record<string, string>, port?: number): Promise<ServerProcess> {
  const chosen = port ?? (await freePort());
  const child = spawn(process.execPath, [...serviceNodeFlags(), '--import', 'tsx', path.join(ROOT, 'src/server.ts')], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      NODE_ENV: 'development',
      LOG_LEVEL: 'info',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...env,
      PORT: String(chosen),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  for (const stream of [child.stdout!, child.stderr!]) {
    let rest = '';
    stream.on('data', (chunk: Buffer) => {
      const lines = (rest + chunk.toString()).split('\n');
      rest = lines.pop() ?? '';
      logs.push(...lines);
    });
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const url = `http://127.0.0.1:${chosen}`;
  const until = Date.now() + 60_000;
  let gone = false;
  exited.then(() => (gone = true));
  for (;;) {
    if (gone) throw new Error(`the service exited during startup:\n${logs.join('\n')}`);
    if (Date.now() > until) {
      child.kill('SIGKILL');
      throw new Error(`the service did not answer /health within 60 s:\n${logs.join('\n')}`);
    }
    const ok = await fetch(`${url}/health`).then((r) => r.ok, () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { port: chosen, url, child, logs, exited, kill: (signal) => child.kill(signal) };
}

export interface ScriptRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a TypeScript file of the repository (`file`, relative to it) to its end in a process of its own, through
 * tsx, with `env` for its environment; kills it after `timeoutMs`. Resolves once its output is read whole.
 */
export function runScript(file: string, args: string[], env: Record<string, string>, timeoutMs = 50_000): Promise<ScriptRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, file), ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env },
      timeout: timeoutMs,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    // 'close', not 'exit': only then has all of stdout and stderr been read.
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}
