// Starting the embedded servers in a child process (lib/server-host.mjs) and talking to them.

import { fork } from 'node:child_process';
import { join } from 'node:path';
import { benchDir, UnavailableError } from './packages.mjs';

/**
 * Starts `kind` ('dynalite' | 'consul') in a child process. Returns `{ url, count(pattern), total(), reset(),
 * close() }`; `pattern` is a string or RegExp matched by the server's request log.
 */
export async function startServer(kind, options = {}) {
  const child = fork(join(benchDir, 'lib', 'server-host.mjs'), [kind, JSON.stringify(options)], {
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const pending = new Map();
  let nextId = 1;
  const url = await new Promise((resolve, reject) => {
    const onExit = (code) =>
      reject(
        /UnavailableError/.test(stderr)
          ? new UnavailableError(`${kind} server unavailable: ${stderr.match(/UnavailableError: (.*)/)?.[1]}`)
          : new Error(`${kind} server exited with ${code} before it was ready:\n${stderr}`),
      );
    child.once('exit', onExit);
    child.on('message', (msg) => {
      if (msg.type === 'ready') {
        child.off('exit', onExit);
        resolve(msg.url);
      } else if (pending.has(msg.id)) {
        const { resolve: ok, reject: fail } = pending.get(msg.id);
        pending.delete(msg.id);
        if (msg.error) fail(new Error(msg.error));
        else ok(msg.value);
      }
    });
  });
  const call = (op, extra = {}) =>
    new Promise((resolve, reject) => {
      if (!child.connected) {
        reject(new Error(`${kind} server is gone`));
        return;
      }
      const id = nextId++;
      pending.set(id, { resolve, reject });
      child.send({ id, op, ...extra });
    });
  let closed;
  return {
    kind,
    url,
    pid: child.pid,
    count: (pattern) =>
      call('count', {
        pattern: pattern instanceof RegExp ? { source: pattern.source, flags: pattern.flags } : pattern,
      }),
    total: () => call('total'),
    reset: () => call('reset'),
    /** Requests per operation / path pattern since the last reset. */
    patterns: () => call('patterns'),
    /** CPU milliseconds the server process has used so far. */
    cpuMs: () => call('cpu'),
    close() {
      closed ??= (async () => {
        if (child.exitCode !== null) return;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        await Promise.race([call('close').catch(() => {}), new Promise((r) => setTimeout(r, 8_000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
        await exited;
      })();
      return closed;
    },
  };
}
