import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { randomFillSync } from 'node:crypto';
import pidusage from 'pidusage';
import { freePort } from '../test/helpers/process';

export const MB = 1024 * 1024;
const ROOT = path.resolve(__dirname, '..');

/** A PDF-signed file of `size` random bytes (the service checks the signature of what it is told is a PDF). */
export async function makeFile(dir: string, size: number): Promise<string> {
  const file = path.join(dir, `file-${size}.pdf`);
  const handle = await fs.open(file, 'w');
  const chunk = Buffer.alloc(MB);
  for (let written = 0; written < size; ) {
    randomFillSync(chunk);
    if (written === 0) chunk.write('%PDF-1.7\n');
    const n = Math.min(MB, size - written);
    await handle.write(chunk, 0, n);
    written += n;
  }
  await handle.close();
  return file;
}

export interface Server {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/**
 * Starts a server process (`script` relative to the repository, run by node, through tsx for .ts) and waits for it.
 * With BENCH_CPU_PROF=dir, the service (dist/server.js) writes a V8 CPU profile there when it stops.
 */
export async function startServer(script: string, env: Record<string, string>, ready = '/'): Promise<Server> {
  const port = await freePort();
  const profile = process.env.BENCH_CPU_PROF && script.startsWith('dist/') ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(process.env.BENCH_CPU_PROF)}`] : [];
  const args = script.endsWith('.ts') ? ['--import', 'tsx', path.join(ROOT, script)] : [...profile, path.join(ROOT, script)];
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; i < 600; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}${ready}`).then(() => true, () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    pid: child.pid!,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

/** Runs fn while sampling the process's RSS every 50 ms; returns fn's result and the peak. */
export async function withPeakRss<T>(pid: number, fn: () => Promise<T>): Promise<{ result: T; peakRss: number }> {
  let peak = (await pidusage(pid)).memory;
  const timer = setInterval(() => {
    pidusage(pid).then((s) => (peak = Math.max(peak, s.memory)), () => undefined);
  }, 50);
  try {
    const result = await fn();
    return { result, peakRss: Math.max(peak, (await pidusage(pid)).memory) };
  } finally {
    clearInterval(timer);
  }
}

/** POSTs `file` as multipart/form-data (field "file") or as the raw body; resolves with seconds taken and the reply. */
export function upload(port: number, urlPath: string, file: string, size: number, multipart = true): Promise<{ seconds: number; status: number; body: string }> {
  const boundary = 'bench-boundary-7d0c4a';
  const head = multipart
    ? Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="bench.pdf"\r\nContent-Type: application/pdf\r\n\r\n`)
    : Buffer.alloc(0);
  const tail = multipart ? Buffer.from(`\r\n--${boundary}--\r\n`) : Buffer.alloc(0);
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: urlPath,
        agent: false,
        headers: {
          'Content-Type': multipart ? `multipart/form-data; boundary=${boundary}` : 'application/octet-stream',
          'Content-Length': String(head.length + size + tail.length),
        },
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ seconds: Number(process.hrtime.bigint() - started) / 1e9, status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.write(head);
    const stream = createReadStream(file);
    stream.pipe(req, { end: false });
    stream.on('end', () => req.end(tail));
  });
}

/** GETs a URL and throws its body away; resolves with seconds taken and bytes read. */
export function download(port: number, urlPath: string): Promise<{ seconds: number; bytes: number; status: number }> {
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: urlPath, agent: false }, (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('end', () => resolve({ seconds: Number(process.hrtime.bigint() - started) / 1e9, bytes, status: res.statusCode ?? 0 }));
      })
      .on('error', reject);
  });
}

/** The best of `runs` timings (the least disturbed by the rest of the machine). */
export async function best(runs: number, fn: () => Promise<number>): Promise<number> {
  let fastest = Infinity;
  for (let i = 0; i < runs; i++) fastest = Math.min(fastest, await fn());
  return fastest;
}
