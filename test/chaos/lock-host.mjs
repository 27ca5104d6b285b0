// The lock server and the workers' lock proxies, in a process of their own: PGlite runs in the harness and
// blocks its event loop for every statement, which must not delay lease renewals. The harness drives this
// process over IPC (faults, history) through `startLockHost`.
//
//   node lock-host.mjs '{"backend":"consul","root":"...","log":".../lock-server.jsonl","workers":4}'

import { fork } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startEtcdLockServer } from './etcd-lock-server.mjs';
import { startConsul, startDynamo } from './lock-servers.mjs';
import { startPgLockServer } from './pg-lock-server.mjs';
import { FaultProxy } from './proxy.mjs';
import { startRedisLockServer } from './redis-lock-server.mjs';

const isChild = process.argv[1] === fileURLToPath(import.meta.url);

/**
 * A worker's lock proxy as the harness sees it: the {@link FaultProxy} fault methods, forwarded over IPC.
 * @typedef {{ setLatency(ms: number): void, blackhole(): void, heal(options?: { reset?: boolean }): void, resetAll(): void }} RemoteProxy
 */

/**
 * Starts the lock host. Resolves once the server and `workers` proxies listen.
 * @param {{ backend: 'consul' | 'dynamodb' | 'etcd' | 'redis' | 'postgres', root: string, log: string, workers: number, redisPersistence?: 'none' | 'aof', databaseUrl?: string }} options
 */
export async function startLockHost(options) {
  // Plain Node on the built packages, whatever the parent runs under (vitest resolves sources instead).
  const { NODE_OPTIONS: _, ...env } = process.env;
  const child = fork(fileURLToPath(import.meta.url), [JSON.stringify(options)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: [],
    env,
  });
  const pending = new Map();
  let nextId = 1;
  let exited = false;
  const ready = new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      exited = true;
      reject(new Error(`the lock host exited with ${code} before it was ready`));
      for (const { reject: fail } of pending.values()) fail(new Error('the lock host exited'));
    });
    child.on('message', (message) => {
      if (message.type === 'ready') resolve(message);
      const call = pending.get(message.id);
      if (!call) return;
      pending.delete(message.id);
      if (message.error) call.reject(new Error(message.error));
      else call.resolve(message.value);
    });
  });
  const call = (op, args = {}) =>
    new Promise((resolve, reject) => {
      if (exited) {
        reject(new Error('the lock host is gone'));
        return;
      }
      const id = nextId++;
      pending.set(id, { resolve, reject });
      child.send({ id, op, ...args });
    });
  const send = (op, args) => {
    call(op, args).catch(() => {});
  };
  const { envs } = await ready;
  /** @type {(slot: number) => RemoteProxy} */
  const proxy = (slot) => ({
    setLatency: (ms) => send('proxy', { slot, method: 'setLatency', args: [ms] }),
    blackhole: () => send('proxy', { slot, method: 'blackhole', args: [] }),
    heal: (healOptions = {}) => send('proxy', { slot, method: 'heal', args: [healOptions] }),
    resetAll: () => send('proxy', { slot, method: 'resetAll', args: [] }),
  });
  return {
    name: options.backend,
    /** A worker's lock settings (its own proxy). */
    env: (slot) => envs[slot - 1],
    proxy,
    election: (durationMs) => send('election', { durationMs }),
    loseAnswers: (count) => send('loseAnswers', { count }),
    /** Kill -9 of the lock server, `downMs` down, then a restart on the same port and data (see the servers). */
    restart: (downMs) => send('restart', { downMs }),
    clear: () => send('clear'),
    /** @returns {Promise<ReturnType<import('./lock-servers.mjs').LockServer['history']>>} */
    history: () => call('history'),
    async close() {
      if (exited) return;
      const gone = new Promise((resolve) => child.once('exit', resolve));
      await call('close').catch(() => {});
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await gone;
      clearTimeout(timer);
    },
  };
}

async function main() {
  const options = JSON.parse(process.argv[2]);
  const fd = openSync(options.log, 'a');
  const onEvent = (event) =>
    writeSync(fd, `${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);
  const server = await startServer(options, onEvent);
  const proxies = [];
  for (let slot = 1; slot <= options.workers; slot++) {
    proxies.push(await new FaultProxy({ name: `w${slot}-lock`, target: server.target }).start());
  }
  // Servers without a server-side way to lose answers (etcd, Redis, PostgreSQL): the next answers on one
  // worker's lock link are lost instead (the connection is reset when they arrive), a worker after another.
  let nextLoser = 0;
  const gate = {
    close: () => {
      for (const p of proxies) p.gate();
    },
    open: () => {
      for (const p of proxies) p.ungate();
    },
    refuse: (on) => {
      for (const p of proxies) p.refuse(on);
    },
  };
  let restarting = false;
  const handlers = {
    proxy: ({ slot, method, args }) => proxies[slot - 1][method](...args),
    election: ({ durationMs }) => server.election?.(durationMs),
    loseAnswers: ({ count }) =>
      server.loseAnswers
        ? server.loseAnswers(count)
        : proxies[nextLoser++ % proxies.length].loseAnswers(count),
    restart: async ({ downMs }) => {
      if (restarting || !server.restart) return;
      restarting = true;
      try {
        await server.restart(downMs, gate);
      } finally {
        restarting = false;
      }
    },
    clear: () => server.clear(),
    history: () => server.history(),
    close: async () => {
      for (const p of proxies) await p.close();
      await server.close();
      closeSync(fd);
      setImmediate(() => process.exit(0));
    },
  };
  process.on('message', async (message) => {
    try {
      const value = await handlers[message.op](message);
      process.send({ id: message.id, value: value ?? null });
    } catch (error) {
      process.send({ id: message.id, error: String(error?.stack ?? error) });
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ type: 'ready', envs: proxies.map((p) => server.env(p.port)) });
}

function startServer(options, onEvent) {
  switch (options.backend) {
    case 'consul':
      return startConsul({ onEvent });
    case 'dynamodb':
      return startDynamo({ root: options.root, onEvent });
    case 'etcd':
      return startEtcdLockServer({ onEvent });
    case 'redis':
      return startRedisLockServer({ persistence: options.redisPersistence, onEvent });
    case 'postgres':
      if (!options.databaseUrl)
        throw new Error('--backend postgres needs DATABASE_URL (a PostgreSQL server)');
      return startPgLockServer({ databaseUrl: options.databaseUrl, onEvent });
    default:
      throw new Error(`unknown lock backend ${options.backend}`);
  }
}

if (isChild) await main();
