import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * How a {@link FaultProxy} treats traffic:
 * - `pass`: forwards both ways;
 * - `reset`: resets every open and new connection (ECONNRESET / socket hang up at the client);
 * - `drop-responses`: forwards requests to the server but swallows its answers, so a write is applied while
 *   the client only sees a timeout;
 * - `drop-requests`: swallows requests, so nothing is applied and the client sees a timeout.
 */
export type ProxyMode = 'pass' | 'reset' | 'drop-responses' | 'drop-requests';

/**
 * A TCP proxy in front of a real server (Consul, etcd, Redis, PostgreSQL), for the transport faults a running
 * server cannot inject: lost answers of applied writes, lost requests, resets.
 */
export interface FaultProxy {
  /** The local port it listens on (127.0.0.1). */
  readonly port: number;
  /** `127.0.0.1:<port>` */
  readonly address: string;
  /** `http://127.0.0.1:<port>` (swap the scheme for other protocols). */
  readonly url: string;
  setMode(mode: ProxyMode): void;
  close(): Promise<void>;
}

/**
 * Starts a proxy on a random local port forwarding to `target`: `host:port`, or a URL such as
 * `http://host:port` (only its host and port are used).
 */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const { hostname, port } = new URL(target.includes('://') ? target : `tcp://${target}`);
  const host = hostname.replace(/^\[(.*)\]$/, '$1');
  const pairs = new Set<{ client: Socket; upstream: Socket }>();
  let mode: ProxyMode = 'pass';

  const server: Server = createServer((client) => {
    if (mode === 'reset') {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect({ host, port: Number(port) });
    const pair = { client, upstream };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk) => {
      if (mode === 'pass' || mode === 'drop-responses') upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (mode === 'pass') client.write(chunk);
    });
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const bound = server.address();
  if (bound === null || typeof bound === 'string') throw new Error('proxy did not bind a TCP port');

  return {
    port: bound.port,
    address: `127.0.0.1:${bound.port}`,
    url: `http://127.0.0.1:${bound.port}`,
    setMode(next) {
      mode = next;
      if (next === 'reset') {
        for (const { client, upstream } of pairs) {
          client.resetAndDestroy();
          upstream.destroy();
        }
        pairs.clear();
      }
    },
    async close() {
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
