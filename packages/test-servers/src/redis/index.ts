import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  binaryAvailable,
  findBinary,
  freePort,
  launchOnFreePorts,
  superviseServer,
} from '../local-process/index.js';

/** What to install when the `redis-server` binary is missing. */
export const REDIS_INSTALL_HINT =
  'apt-get install redis-server (Debian/Ubuntu), or set REDIS_SERVER_BIN to a redis-server binary';

/** Options for {@link startRedis}. */
export interface StartRedisOptions {
  /** The redis-server binary; default `REDIS_SERVER_BIN`, else `redis-server` on the `PATH`. */
  binary?: string;
  /** Port; a free random port when omitted. */
  port?: number;
  /**
   * `none` (default): no RDB snapshots, no append-only file, so every restart comes back empty.
   * `aof`: an append-only file synced on every write, so a restart keeps the data (unless `restart({ empty })`).
   */
  persistence?: 'none' | 'aof';
  /** More command-line arguments, such as `['--requirepass', 'secret']`. */
  args?: readonly string[];
  /** Also listen for TLS on another free port, with this PEM certificate and key (see `tlsUrl`). */
  tls?: { certFile: string; keyFile: string; caFile: string };
  /** How long to wait for the server to answer, in ms. Default 20 s. */
  startTimeoutMs?: number;
}

/** A running redis-server started by {@link startRedis}. */
export interface RedisServer {
  /** `redis://127.0.0.1:<port>`, without credentials. */
  readonly url: string;
  readonly port: number;
  /** `rediss://127.0.0.1:<tls port>` when started with `tls`. */
  readonly tlsUrl: string | undefined;
  /** The server's process id (for tests that kill it). */
  readonly pid: number | undefined;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s) and deletes its data directory. Idempotent. */
  close(): Promise<void>;
  /** Kills the server at once (SIGKILL), as a crash would; the data directory is kept for {@link restart}. */
  kill(): Promise<void>;
  /**
   * Kills the server (if running) and starts it again on the same port. With `empty`, the data directory
   * is wiped first, as a restart of a Redis without persistence (or with lost disks) would be.
   */
  restart(options?: { empty?: boolean }): Promise<void>;
}

/** The redis-server binary that {@link startRedis} would run, or `undefined` when there is none. */
export function findRedis(binary = process.env.REDIS_SERVER_BIN): string | undefined {
  return findBinary('redis-server', binary);
}

/**
 * Decides whether tests that need a real Redis run: `true` when the binary is there. When it is missing,
 * warns (naming the package to install) and returns `false`, so the caller skips; but when `CI` is set a
 * missing server is an error, never a silent skip.
 */
export function redisAvailable(what = 'Redis backend tests'): boolean {
  return binaryAvailable(findRedis() !== undefined, what, 'no redis-server binary found', REDIS_INSTALL_HINT);
}

/**
 * Starts a redis-server on a free local port with a temporary data directory, no persistence unless
 * asked. Retries with another port when the port was taken in the meantime.
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const binary = findRedis(options.binary);
  if (!binary) throw new Error(`no redis-server binary found. Fix: ${REDIS_INSTALL_HINT}.`);
  const dataDir = await mkdtemp(join(tmpdir(), 'baton-redis-'));
  return launchOnFreePorts(
    options.port,
    async (port) => launch(binary, dataDir, port, options.tls ? await freePort() : undefined, options),
    () => rm(dataDir, { recursive: true, force: true }),
  );
}

async function launch(
  binary: string,
  dataDir: string,
  port: number,
  tlsPort: number | undefined,
  options: StartRedisOptions,
): Promise<RedisServer> {
  const tls = options.tls
    ? [
        '--tls-port',
        String(tlsPort),
        '--tls-cert-file',
        options.tls.certFile,
        '--tls-key-file',
        options.tls.keyFile,
        '--tls-ca-cert-file',
        options.tls.caFile,
        '--tls-auth-clients',
        'no',
      ]
    : [];
  const persistence =
    options.persistence === 'aof'
      ? ['--appendonly', 'yes', '--appendfsync', 'always', '--save', '']
      : ['--appendonly', 'no', '--save', ''];
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dataDir,
    '--daemonize',
    'no',
    '--logfile',
    '',
    '--loglevel',
    'warning',
    ...persistence,
    ...tls,
    ...(options.args ?? []),
  ];
  const startTimeoutMs = options.startTimeoutMs ?? 20_000;
  const server = superviseServer({
    name: 'redis-server',
    binary,
    args,
    ready: () => answers(port),
    pollMs: 25,
    startTimeoutMs,
  });
  await server.start();
  let closed: Promise<void> | undefined;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    tlsUrl: tlsPort === undefined ? undefined : `rediss://127.0.0.1:${tlsPort}`,
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
    async restart(restartOptions = {}) {
      await server.stop('SIGKILL');
      if (restartOptions.empty) {
        for (const entry of await readdir(dataDir)) {
          await rm(join(dataDir, entry), { recursive: true, force: true });
        }
      }
      await server.start();
    },
  };
}

/** True when something on `port` answers a PING like Redis (`+PONG`, or `-NOAUTH` with a password set). */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG') || reply.startsWith('-NOAUTH'));
    });
  });
}
