// Worker child processes: the parent spawns a script with a JSON config, waits for `ready`, sends `go`, and
// later `stop`; the child answers with `started`, `progress`/custom messages, and `stopped` (with stats).
// Children run the built dist of the packages, exactly as a deployed job server would.

import { fork } from 'node:child_process';
import { join } from 'node:path';
import { benchDir } from './packages.mjs';

/** Node flags every child gets (plus `execArgv` of the call). */
const QUIET_ENV = { AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: '1', NODE_NO_WARNINGS: '1' };

/**
 * Spawns `bench/workers/<script>` with `config`. Returns a handle:
 * - `next(type, timeoutMs)`: the next message of that type (messages are queued until asked for);
 * - `send(msg)`, `kill(signal)`, `exited` (promise of `{ code, signal }`), `pid`, `stderr()`.
 */
export function spawnChild(script, config, { execArgv = [], env = {} } = {}) {
  const child = fork(join(benchDir, 'workers', script), [JSON.stringify(config)], {
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    execArgv,
    env: { ...process.env, ...QUIET_ENV, ...env },
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
    if (stderr.length > 100_000) stderr = stderr.slice(-50_000);
  });
  const queue = [];
  const waiters = [];
  child.on('message', (msg) => {
    const i = waiters.findIndex((w) => w.type === msg.type);
    if (i >= 0) waiters.splice(i, 1)[0].resolve(msg);
    else queue.push(msg);
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  exited.then(({ code, signal }) => {
    for (const w of waiters.splice(0)) {
      w.reject(
        new Error(
          `${script} exited (${code ?? signal}) while waiting for '${w.type}':\n${stderr.slice(-4000)}`,
        ),
      );
    }
  });
  return {
    pid: child.pid,
    exited,
    stderr: () => stderr,
    send: (msg) => child.connected && child.send(msg),
    kill: (signal = 'SIGKILL') => child.kill(signal),
    /** A queued message of that type, or undefined (never waits). */
    poll(type) {
      const i = queue.findIndex((m) => m.type === type);
      return i >= 0 ? queue.splice(i, 1)[0] : undefined;
    },
    next(type, timeoutMs = 60_000) {
      const i = queue.findIndex((m) => m.type === type);
      if (i >= 0) return Promise.resolve(queue.splice(i, 1)[0]);
      if (child.exitCode !== null || child.signalCode !== null) {
        return Promise.reject(new Error(`${script} has exited; no '${type}':\n${stderr.slice(-4000)}`));
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          const j = waiters.indexOf(waiter);
          if (j >= 0) waiters.splice(j, 1);
          reject(new Error(`${script}: no '${type}' within ${timeoutMs} ms:\n${stderr.slice(-4000)}`));
        }, timeoutMs);
        const waiter = {
          type,
          resolve: (msg) => {
            clearTimeout(timer);
            resolve(msg);
          },
          reject: (error) => {
            clearTimeout(timer);
            reject(error);
          },
        };
        waiters.push(waiter);
      });
    },
  };
}

/** Stops a child politely (`stop` message), then kills it if it does not exit in time. */
export async function stopChild(child, timeoutMs = 20_000) {
  child.send({ type: 'stop' });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    return await child.exited;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Child side: parses the config, calls `setup(config)` which returns `{ start(), stop() → stats }`, and
 * speaks the protocol. Uncaught errors are reported and end the process with code 1.
 */
export async function childMain(setup) {
  const send = (msg) => process.send?.(msg);
  process.on('uncaughtException', (error) => {
    process.stderr.write(`uncaught: ${error?.stack ?? error}\n`);
    process.exit(1);
  });
  process.on('unhandledRejection', (error) => {
    process.stderr.write(`unhandled rejection: ${error?.stack ?? error}\n`);
  });
  const config = JSON.parse(process.argv[2] ?? '{}');
  // @baton/core's systemClock unrefs every timer, so a process whose only pending work is a backoff sleep (a
  // retried request at start-up, a worker waiting for its next pass) exits with the promise unsettled. A
  // job server must not; until core keeps its own process alive, the child holds a referenced timer.
  const keepAlive = setInterval(() => {}, 60_000);
  const instance = await setup(config, send);
  let stopping;
  const stop = async () => {
    stopping ??= (async () => {
      const stats = await instance.stop();
      clearInterval(keepAlive);
      await new Promise((resolve) => {
        if (!process.connected) resolve();
        else process.send({ type: 'stopped', stats: stats ?? null }, () => resolve());
      });
      if (process.connected) process.disconnect();
      // Pools and agents that linger must not keep a finished child alive.
      setTimeout(() => process.exit(0), 200).unref();
    })();
    return stopping;
  };
  process.on('message', async (msg) => {
    if (msg.type === 'go') {
      const at = Date.now();
      await instance.start(msg);
      send({ type: 'started', at });
    } else if (msg.type === 'stop') {
      await stop();
    } else {
      await instance.message?.(msg);
    }
  });
  process.on('SIGTERM', () => {
    void stop().finally(() => process.exit(0));
  });
  process.on('disconnect', () => {
    if (!stopping) void stop().finally(() => process.exit(0));
  });
  send({ type: 'ready', pid: process.pid });
}
