import { execSync, spawn, type ChildProcess } from 'node:child_process';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { randomFillSync } from 'node:crypto';
import { freePort, serviceNodeFlags } from '../test/helpers/process';

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
 * The service (dist/server.js) runs with the node flags of `npm start`, as ops run it; with BENCH_CPU_PROF=dir it also
 * writes a V8 CPU profile there when it stops.
 */
export async function startServer(script: string, env: Record<string, string>, ready = '/'): Promise<Server> {
  const port = await freePort();
  const service = script === 'dist/server.js';
  const profile = process.env.BENCH_CPU_PROF && service ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(process.env.BENCH_CPU_PROF)}`] : [];
  const flags = service ? serviceNodeFlags() : [];
  const args = script.endsWith('.ts') ? ['--import', 'tsx', path.join(ROOT, script)] : [...flags, ...profile, path.join(ROOT, script)];
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  for (let i = 0; ; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}${ready}`).then(() => true, () => false);
    if (ok) break;
    if (exited !== undefined || i >= 600) {
      child.kill();
      throw new Error(`${script} did not start (${exited === undefined ? 'no answer in 60 s' : `exit code ${exited}`})`);
    }
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

/** A process's resident set size, in bytes, from /proc (Linux). */
async function rssOf(pid: number): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) * 1024;
}

/** Runs fn while sampling the process's RSS every 50 ms; returns fn's result and the peak. */
export async function withPeakRss<T>(pid: number, fn: () => Promise<T>): Promise<{ result: T; peakRss: number }> {
  let peak = await rssOf(pid);
  const timer = setInterval(() => {
    rssOf(pid).then((rss) => (peak = Math.max(peak, rss)), () => undefined);
  }, 50);
  try {
    const result = await fn();
    return { result, peakRss: Math.max(peak, await rssOf(pid)) };
  } finally {
    clearInterval(timer);
  }
}

/** The opening of a form whose field "file" holds a PDF named `fileName`; the file's bytes follow it. */
const formHead = (boundary: string, fileName: string) =>
  Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${fileName}"\r\nContent-Type: application/pdf\r\n\r\n`);
const formTail = (boundary: string) => Buffer.from(`\r\n--${boundary}--\r\n`);

/** A POST to a server under test, and its reply read whole; the reply rejects when the connection fails first. */
function post(port: number, urlPath: string, headers: http.OutgoingHttpHeaders): { req: http.ClientRequest; reply: Promise<{ status: number; body: string }> } {
  const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: urlPath, agent: false, headers });
  const reply = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
  return { req, reply };
}

/** POSTs `file` as multipart/form-data (field "file") or as the raw body; resolves with seconds taken and the reply. */
export async function upload(port: number, urlPath: string, file: string, size: number, multipart = true): Promise<{ seconds: number; status: number; body: string }> {
  const boundary = 'bench-boundary-7d0c4a';
  const head = multipart ? formHead(boundary, 'bench.pdf') : Buffer.alloc(0);
  const tail = multipart ? formTail(boundary) : Buffer.alloc(0);
  const started = process.hrtime.bigint();
  const { req, reply } = post(port, urlPath, {
    'Content-Type': multipart ? `multipart/form-data; boundary=${boundary}` : 'application/octet-stream',
    'Content-Length': String(head.length + size + tail.length),
  });
  req.write(head);
  const stream = createReadStream(file);
  stream.pipe(req, { end: false });
  stream.on('end', () => req.end(tail));
  const { status, body } = await reply;
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, status, body };
}

/**
 * POSTs a PDF of `size` bytes as a form, at about `bytesPerSecond`, as a client on a slow line does; resolves with
 * the status and the error code, if any. A connection the server closes counts as status 0.
 */
export async function slowUpload(port: number, urlPath: string, size: number, bytesPerSecond: number): Promise<{ status: number; code?: string }> {
  const boundary = 'bench-slow-4e1b';
  const head = Buffer.concat([formHead(boundary, 'slow.pdf'), Buffer.from('%PDF-1.7\n')]);
  const tail = formTail(boundary);
  const chunk = Buffer.alloc(16 * 1024, 'x');
  const { req, reply } = post(port, urlPath, {
    'Content-Type': `multipart/form-data; boundary=${boundary}`,
    'Content-Length': String(head.length + size - 9 + tail.length),
  });
  let answered = false;
  req.once('response', () => (answered = true));
  req.write(head);
  let sent = 9;
  const timer = setInterval(() => {
    if (answered || req.destroyed) return clearInterval(timer);
    const part = chunk.subarray(0, Math.min(chunk.length, size - sent));
    sent += part.length;
    if (sent < size) {
      req.write(part);
    } else {
      clearInterval(timer);
      req.end(Buffer.concat([part, tail]));
    }
  }, (chunk.length / bytesPerSecond) * 1000);
  try {
    const { status, body } = await reply;
    let code: string | undefined;
    try {
      code = (JSON.parse(body) as { error?: { code?: string } }).error?.code;
    } catch {
      // not JSON
    }
    return { status, code };
  } catch {
    return { status: 0 };
  }
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

/** CPU time (user + system) a process has used so far, in milliseconds, from /proc (Linux). */
export async function cpuMs(pid: number): Promise<number> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (!stat) return NaN;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // clock ticks of 1/100 s
}

export interface Contender {
  name: string;
  /** One timed run: seconds taken. */
  run(): Promise<number>;
  /** Processes whose CPU time is charged to this contender's runs (its server, and S3 behind it). */
  pids?: number[];
}

export interface Measured {
  /** Median seconds of one run. */
  seconds: number;
  /** Every timed run's seconds, in the order run: how far the median can be trusted. */
  runs: number[];
  /** Mean CPU milliseconds per run, by pid (in the order given): /proc counts in 10 ms ticks, too coarse for a median. */
  cpuMs: number[];
}

/**
 * Times contenders against each other fairly on a noisy machine: untimed warm-up runs first (the JIT, connection
 * pools), then `rounds` rounds that run every contender once, in an order rotated each round, each run starting
 * with nothing left for the disk to write (`sync`), so none pays for another's writeback. Medians, not bests.
 */
export async function compare(contenders: Contender[], rounds: number, warmup = 1): Promise<Map<string, Measured>> {
  for (let i = 0; i < warmup; i++) for (const c of contenders) await c.run();
  const seconds = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
  const cpu = new Map<string, number[][]>(contenders.map((c) => [c.name, (c.pids ?? []).map(() => [])]));
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < contenders.length; k++) {
      const c = contenders[(round + k) % contenders.length];
      execSync('sync');
      const before = await Promise.all((c.pids ?? []).map(cpuMs));
      seconds.get(c.name)!.push(await c.run());
      const after = await Promise.all((c.pids ?? []).map(cpuMs));
      after.forEach((ms, i) => cpu.get(c.name)![i].push(ms - before[i]));
    }
  }
  return new Map(contenders.map((c) => [c.name, { seconds: median(seconds.get(c.name)!), runs: seconds.get(c.name)!, cpuMs: cpu.get(c.name)!.map(mean) }]));
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

export interface BenchS3 extends Server {
  /** The environment that points a server at it. */
  env: Record<string, string>;
}

/** s3rver in a process of its own (bench/servers/s3.ts), with one empty bucket. */
export async function startS3Server(dir: string): Promise<BenchS3> {
  const bucket = 'bench-documents';
  const server = await startServer('bench/servers/s3.ts', { BENCH_DIR: dir, BENCH_BUCKET: bucket });
  return {
    ...server,
    env: {
      STORAGE_DRIVER: 's3',
      AWS_S3_BUCKET_NAME: bucket,
      AWS_S3_ENDPOINT: `http://127.0.0.1:${server.port}`,
      AWS_S3_FORCE_PATH_STYLE: 'true',
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      S3_TIMEOUT: '60s',
    },
  };
}
