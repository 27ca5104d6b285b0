// A real redis-server as the lock server of a chaos run, started by @baton/test-servers' `startRedis` (the backend's
// own tests use it), with a history of the lock keys from Redis itself: `MONITOR` shows every command the
// backend's Lua scripts run (`[0 lua] "HSET" ...`), in the order the server ran them, stamped with the server's
// clock. A restart without persistence comes back empty: every lease the server held ends at the kill.

import { connect } from 'node:net';
import { startRedis } from '@baton/test-servers/redis';

const PREFIX = 'baton:';
const LOCK = `${PREFIX}lock:`;

/**
 * @typedef {object} RedisCommand one command run inside a script, as MONITOR showed it
 * @property {number} at server time, epoch ms
 * @property {string[]} args command name (upper case) and arguments
 */

/** Parses one MONITOR line (`+1700000000.123456 [0 lua] "HSET" "k" ...`); undefined for other lines. */
export function parseMonitorLine(line) {
  const match = /^\+(\d+)\.(\d+) \[(\d+) ([^\]]+)\] (.*)$/.exec(line);
  if (!match) return undefined;
  const args = [];
  const text = match[5];
  let i = 0;
  while (i < text.length) {
    if (text[i] !== '"') {
      i++;
      continue;
    }
    let value = '';
    for (i++; i < text.length && text[i] !== '"'; i++) {
      if (text[i] !== '\\') {
        value += text[i];
        continue;
      }
      const c = text[++i];
      if (c === 'x') {
        value += String.fromCharCode(Number.parseInt(text.slice(i + 1, i + 3), 16));
        i += 2;
      } else value += { n: '\n', r: '\r', t: '\t', a: '\x07', b: '\b' }[c] ?? c;
    }
    i++;
    args.push(value);
  }
  if (args.length > 0) args[0] = args[0].toUpperCase();
  return { at: Number(match[1]) * 1000 + Number(match[2].padEnd(6, '0')) / 1000, source: match[4], args };
}

/**
 * Leases from the commands the backend's scripts ran on lock keys (`baton:lock:<key>`) and the server's
 * restarts. A grant is the `HSET` that writes `owner`, `token` and `fence`; a renewal's `HSET ... exp` moves
 * the lease's end at the server (`exp`, server ms: the scripts treat the holder as gone after it); a release
 * is `HSET ... rel 1` or `DEL`. A lease ends at its release, at its last `exp`, or at a restart that came back
 * empty (`lost`), whichever is first.
 * @param {RedisCommand[]} commands in server order
 * @param {Array<{ at: number, empty: boolean }>} restarts when the server was killed, and whether it came back empty
 * @returns {import('./checker.mjs').Lease[]}
 */
export function leasesFromRedisCommands(commands, restarts = []) {
  const leases = [];
  const open = new Map();
  const close = (key, at, kind) => {
    const held = open.get(key);
    if (!held) return;
    open.delete(key);
    const expiry = held.exp;
    // Taken by a new grant: valid at the server until its exp, however late the grant came (a grant before
    // it would overlap, and the checker must see that).
    if (expiry <= at || kind === 'taken') {
      held.lease.end = expiry;
      held.lease.endKind = 'expired';
    } else {
      held.lease.end = at;
      held.lease.endKind = kind;
    }
  };
  const events = [
    ...commands.map((c) => ({ at: c.at, command: c })),
    ...restarts.filter((r) => r.empty).map((r) => ({ at: r.at, restart: r })),
  ].sort((a, b) => a.at - b.at);
  for (const event of events) {
    if (event.restart) {
      for (const key of [...open.keys()]) close(key, event.at, 'lost');
      continue;
    }
    const [name, lockKey, ...rest] = event.command.args;
    if (!lockKey?.startsWith(LOCK)) continue;
    const key = lockKey.slice(LOCK.length);
    const at = event.command.at;
    if (name === 'DEL') {
      close(key, at, 'released');
      continue;
    }
    if (name !== 'HSET') continue;
    const fields = new Map();
    for (let i = 0; i + 1 < rest.length; i += 2) fields.set(rest[i], rest[i + 1]);
    if (fields.has('owner') && fields.has('fence')) {
      close(key, at, 'taken');
      const lease = {
        key,
        owner: fields.get('owner'),
        fence: Number(fields.get('fence')),
        start: at,
        end: undefined,
        endKind: 'held',
      };
      leases.push(lease);
      open.set(key, { lease, exp: Number(fields.get('exp')) });
    } else if (fields.get('rel') === '1') {
      close(key, at, 'released');
    } else if (fields.has('exp')) {
      const held = open.get(key);
      if (held) held.exp = Number(fields.get('exp'));
    }
  }
  const now = Date.now();
  for (const { lease, exp } of open.values()) {
    if (exp <= now) {
      lease.end = exp;
      lease.endKind = 'expired';
    }
  }
  return leases;
}

/** Attaches MONITOR to the server on `port`; resolves once the server confirmed (`+OK`). */
function monitor(port, onCommand) {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let buffered = '';
    let confirmed = false;
    socket.once('error', (error) => {
      if (!confirmed) reject(error);
    });
    socket.on('error', () => {});
    socket.once('connect', () => socket.write('MONITOR\r\n'));
    socket.on('data', (chunk) => {
      buffered += chunk.toString('latin1');
      let newline = buffered.indexOf('\r\n');
      while (newline >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 2);
        newline = buffered.indexOf('\r\n');
        if (!confirmed && line === '+OK') {
          confirmed = true;
          resolve(socket);
          continue;
        }
        const command = parseMonitorLine(line);
        if (command?.source === 'lua') onCommand({ at: command.at, args: command.args });
      }
    });
  });
}

/**
 * redis-server on a free port in a temporary directory, watched by MONITOR. `persistence: 'none'` (the
 * default): no RDB, no AOF, so a restart comes back empty, counter and sessions gone; `aof`: every write
 * synced, a restart keeps the data. `restart(downMs, gate)`: kill -9, wait, start again on the same port and
 * directory; `gate` holds the workers' connections while MONITOR attaches, so no command goes unrecorded.
 * @param {{ persistence?: 'none' | 'aof', onEvent?: (event: object) => void }} [options]
 * @returns {Promise<import('./lock-servers.mjs').LockServer>}
 */
export async function startRedisLockServer({ persistence = 'none', onEvent = () => {} } = {}) {
  const server = await startRedis({ persistence });
  const commands = [];
  const restarts = [];
  const record = (command) => {
    const [name, key] = command.args;
    if ((name !== 'HSET' && name !== 'DEL') || !key?.startsWith(LOCK)) return;
    commands.push(command);
    onEvent({ type: 'redis-command', ...command });
  };
  let watcher = await monitor(server.port, record);
  return {
    name: 'redis',
    target: { host: '127.0.0.1', port: server.port },
    env: (port) => ({
      BATON_BACKEND: 'redis',
      REDIS_URL: `redis://127.0.0.1:${port}`,
      BATON_REDIS_PREFIX: PREFIX,
    }),
    loseAnswers: undefined,
    clear: () => {},
    async restart(downMs, gate) {
      const pid = server.pid;
      await server.kill();
      const at = Date.now();
      restarts.push({ at, empty: persistence === 'none' });
      onEvent({ type: 'lock-server-killed', pid, empty: persistence === 'none' });
      watcher.destroy();
      await new Promise((resolve) => setTimeout(resolve, downMs));
      gate.close();
      try {
        await server.restart();
        watcher = await monitor(server.port, record);
      } finally {
        gate.open();
      }
      onEvent({ type: 'lock-server-restarted', pid: server.pid });
    },
    history: () => ({
      leases: leasesFromRedisCommands(commands, restarts),
      grantViolations: [],
      exactFences: true,
      records: commands.length,
      restarts,
    }),
    close: async () => {
      watcher.destroy();
      await server.close();
    },
  };
}
