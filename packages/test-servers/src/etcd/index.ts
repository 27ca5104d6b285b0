import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  binaryAvailable,
  findBinary,
  freePort,
  launchOnFreePorts,
  superviseServer,
} from '../local-process/index.js';

/** What to install when the `etcd` binary is missing. */
export const ETCD_INSTALL_HINT =
  'apt-get install etcd-server (Debian/Ubuntu), or set ETCD_BIN to an etcd binary';

/** Options for {@link startEtcd}. */
export interface StartEtcdOptions {
  /** The etcd binary; default `ETCD_BIN`, else `etcd` on the `PATH`. */
  binary?: string;
  /** Client port; a free random port when omitted. */
  port?: number;
  /** How long to wait for the server to report healthy, in ms. Default 20 s. */
  startTimeoutMs?: number;
}

/** A running etcd server started by {@link startEtcd}. */
export interface EtcdServer {
  /** Client URL, e.g. `http://127.0.0.1:41234`. */
  readonly endpoint: string;
  readonly port: number;
  /** The server's process id (for tests that kill it). */
  readonly pid: number | undefined;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s) and deletes its data directory. Idempotent. */
  close(): Promise<void>;
  /** Kills the server at once (SIGKILL), as a crash would; the data directory is kept for {@link restart}. */
  kill(): Promise<void>;
  /** Starts the server again on the same ports and data directory, after {@link kill}. */
  restart(): Promise<void>;
}

/** The etcd binary that {@link startEtcd} would run, or `undefined` when there is none. */
export function findEtcd(binary = process.env.ETCD_BIN): string | undefined {
  return findBinary('etcd', binary);
}

/**
 * Decides whether tests that need a real etcd run: `true` when the binary is there. When it is missing,
 * warns (naming the package to install) and returns `false`, so the caller skips; but when `CI` is set a
 * missing server is an error, never a silent skip.
 */
export function etcdAvailable(what = 'etcd backend tests'): boolean {
  return binaryAvailable(findEtcd() !== undefined, what, 'no etcd binary found', ETCD_INSTALL_HINT);
}

/**
 * Starts a one-member etcd cluster on free local ports with a temporary data directory. Raft timing is
 * shortened (10 ms heartbeat, 50 ms election timeout) so that the server grants leases as short as one
 * second (etcd's floor is 1.5 election timeouts, rounded up to whole seconds). Retries with other ports when
 * a port was taken in the meantime.
 */
export async function startEtcd(options: StartEtcdOptions = {}): Promise<EtcdServer> {
  const binary = findEtcd(options.binary);
  if (!binary) throw new Error(`no etcd binary found. Fix: ${ETCD_INSTALL_HINT}.`);
  const dataDir = await mkdtemp(join(tmpdir(), 'baton-etcd-'));
  return launchOnFreePorts(
    options.port,
    async (port) => launch(binary, dataDir, port, await freePort(), options.startTimeoutMs ?? 20_000),
    () => rm(dataDir, { recursive: true, force: true }),
  );
}

async function launch(
  binary: string,
  dataDir: string,
  port: number,
  peerPort: number,
  startTimeoutMs: number,
): Promise<EtcdServer> {
  const endpoint = `http://127.0.0.1:${port}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const args = [
    '--name=baton-test',
    `--data-dir=${dataDir}`,
    `--listen-client-urls=${endpoint}`,
    `--advertise-client-urls=${endpoint}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=baton-test=${peer}`,
    '--heartbeat-interval=10',
    '--election-timeout=50',
    '--logger=zap',
    '--log-level=error',
  ];
  const server = superviseServer({
    name: 'etcd',
    binary,
    args,
    ready: () => isHealthy(endpoint),
    pollMs: 50,
    startTimeoutMs,
  });
  await server.start();
  let closed: Promise<void> | undefined;
  return {
    endpoint,
    port,
    get pid() {
      return server.pid;
    },
    close() {
      closed ??= (async () => {
        await server.stop('SIGTERM');
        await rm(dataDir, { recursive: true, force: true });
      })();
      return closed;
    },
    kill: () => server.stop('SIGKILL'),
    async restart() {
      await server.stop('SIGKILL');
      await server.start();
    },
  };
}

async function isHealthy(endpoint: string): Promise<boolean> {
  try {
    const response = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1_000) });
    const body = (await response.json()) as { health?: unknown };
    return body.health === 'true' || body.health === true;
  } catch {
    return false;
  }
}
