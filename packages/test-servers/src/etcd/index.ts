import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

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
  const candidates = binary
    ? [binary]
    : [
        ...(process.env.PATH ?? '')
          .split(delimiter)
          .filter(Boolean)
          .map((dir) => join(dir, 'etcd')),
        '/usr/bin/etcd',
      ];
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not there: try the next one.
    }
  }
  return undefined;
}

/**
 * Decides whether tests that need a real etcd run: `true` when the binary is there. When it is missing,
 * warns (naming the package to install) and returns `false`, so the caller skips; but when `CI` is set a
 * missing server is an error, never a silent skip.
 */
export function etcdAvailable(what = 'etcd backend tests'): boolean {
  if (findEtcd()) return true;
  const message = `${what}: no etcd binary found. Fix: ${ETCD_INSTALL_HINT}.`;
  if (process.env.CI) throw new Error(`${message} CI is set, so the tests fail instead of skipping.`);
  console.warn(`SKIPPED ${message}`);
  return false;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
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
  for (let attempt = 0; ; attempt++) {
    const port = options.port ?? (await freePort());
    const peerPort = await freePort();
    try {
      return await launch(binary, dataDir, port, peerPort, options.startTimeoutMs ?? 20_000);
    } catch (error) {
      if (attempt >= 3 || options.port !== undefined) {
        await rm(dataDir, { recursive: true, force: true });
        throw error;
      }
    }
  }
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
  let child: ChildProcess | undefined;
  let output = '';
  const start = async (): Promise<void> => {
    output = '';
    const current = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = current;
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4_000);
    };
    current.stdout?.on('data', keep);
    current.stderr?.on('data', keep);
    const exited = new Promise<never>((_, reject) =>
      current.once('exit', (code, signal) =>
        reject(new Error(`etcd exited during start (${signal ?? code}): ${output.trim()}`)),
      ),
    );
    exited.catch(() => undefined);
    const deadline = Date.now() + startTimeoutMs;
    while (Date.now() < deadline) {
      const healthy = await Promise.race([isHealthy(endpoint), exited]);
      if (healthy) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    current.kill('SIGKILL');
    throw new Error(`etcd did not become healthy within ${startTimeoutMs} ms: ${output.trim()}`);
  };
  const stop = async (signal: NodeJS.Signals): Promise<void> => {
    const current = child;
    child = undefined;
    if (!current || current.exitCode !== null || current.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => current.once('exit', () => resolve()));
    current.kill(signal);
    const timer = setTimeout(() => current.kill('SIGKILL'), 5_000);
    await gone;
    clearTimeout(timer);
  };
  await start();
  let closed: Promise<void> | undefined;
  return {
    endpoint,
    port,
    get pid() {
      return child?.pid;
    },
    close() {
      closed ??= (async () => {
        await stop('SIGTERM');
        await rm(dataDir, { recursive: true, force: true });
      })();
      return closed;
    },
    kill: () => stop('SIGKILL'),
    async restart() {
      await stop('SIGKILL');
      await start();
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
