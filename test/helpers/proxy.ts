import net from 'node:net';
import { once } from 'node:events';

/**
 * A TCP proxy on a port of its own, in front of a real server (Postgres, the S3 server), that a test uses to cause
 * network faults for real: `down()` resets every connection and refuses new ones, `hang()` accepts and holds
 * connections without passing a byte (a store that does not answer), `up()` restores it. Counts the bytes it passed
 * each way, so a test can see how much a client or server really read.
 */
export interface TestProxy {
  readonly port: number;
  /** Bytes passed from the client to the target, and from the target to the client. */
  readonly bytes: { toTarget: number; toClient: number };
  /** Connections accepted from clients so far (stalled or not): a client's request has reached the network. */
  readonly accepted: number;
  retarget(port: number): void;
  down(): Promise<void>;
  hang(): void;
  /** Stops passing bytes, on open and new connections, without dropping any: a store slowed to a crawl. */
  stall(): void;
  /** Passes bytes again after a stall. */
  unstall(): void;
  /**
   * Reads what clients send from then on, on open and new connections, and keeps it from the target: a request
   * sent that never arrives. `held()` is what was kept, so a test can wait until a given request has gone out.
   * Ended by `down()` or `up()`, which drop the connections.
   */
  hold(): void;
  held(): string;
  /**
   * Hands what the target sends through `edit` before the client gets it (until called again without one): a
   * server that answers something the real one only does at the worst moment.
   */
  tamper(edit?: (chunk: Buffer) => Buffer): void;
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startProxy(targetPort: number, host = '127.0.0.1'): Promise<TestProxy> {
  let target = targetPort;
  let mode: 'up' | 'hang' | 'down' = 'up';
  let stalled = false;
  let holding: Buffer[] | undefined;
  const sockets = new Set<net.Socket>();
  const bytes = { toTarget: 0, toClient: 0 };
  let edit: ((chunk: Buffer) => Buffer) | undefined;
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };

  let accepted = 0;
  const server = net.createServer((client) => {
    accepted++;
    track(client);
    if (mode === 'down') return client.resetAndDestroy();
    if (mode === 'hang') return client.pause();
    const upstream = net.connect(target, host);
    track(upstream);
    const relay = (from: net.Socket, to: net.Socket, counter: 'toTarget' | 'toClient') => {
      from.on('data', (received: Buffer) => {
        if (counter === 'toTarget' && holding) return void holding.push(received);
        const chunk = counter === 'toClient' && edit ? edit(received) : received;
        bytes[counter] += chunk.length;
        // Backpressure passes through: a side that cannot take more stops the other from being read.
        if (!to.write(chunk)) {
          from.pause();
          to.once('drain', () => from.resume());
        }
      });
      from.on('end', () => to.end());
      from.on('close', () => to.destroy());
    };
    relay(client, upstream, 'toTarget');
    relay(upstream, client, 'toClient');
    if (stalled) {
      client.pause();
      upstream.pause();
    }
  });
  server.listen(0, host);
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;

  const dropAll = () => {
    for (const socket of sockets) socket.resetAndDestroy();
  };
  return {
    port,
    bytes,
    get accepted() {
      return accepted;
    },
    retarget(next) {
      target = next;
    },
    hold() {
      holding ??= [];
    },
    held() {
      return Buffer.concat(holding ?? []).toString('latin1');
    },
    async down() {
      mode = 'down';
      holding = undefined;
      dropAll();
    },
    hang() {
      mode = 'hang';
      // Open connections go silent too: nothing more passes either way.
      for (const socket of sockets) socket.pause();
    },
    stall() {
      stalled = true;
      for (const socket of sockets) socket.pause();
    },
    unstall() {
      stalled = false;
      for (const socket of sockets) socket.resume();
    },
    tamper(next) {
      edit = next;
    },
    async up() {
      mode = 'up';
      holding = undefined;
      dropAll(); // held connections of a hang are reset, as a recovering server would
    },
    async close() {
      dropAll();
      server.close();
      await once(server, 'close').catch(() => undefined);
    },
  };
}
