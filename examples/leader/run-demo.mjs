// The whole demo in one command: starts the Consul-compatible test server (unless CONSUL_HTTP_ADDR points at
// one), spawns three candidates and one observer on one election key, then
//   1. waits for a leader,
//   2. kills it with SIGKILL (a crash): another candidate takes over once the session expires,
//   3. stops the new leader with SIGTERM (it resigns): the next one takes over at once,
//   4. stops everything.
// Exits 0 when both handovers happened within HANDOVER_TIMEOUT_MS, 1 otherwise.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createLockProvider, Election } from '@baton/core';
import { startConsulTestServer } from '@baton/test-servers/consul-server';
import { ELECTION_KEY, lockEnv, logger } from './shared.mjs';

const log = logger('demo');
const killAfterMs = Number(process.env.KILL_AFTER_MS ?? 3_000);
const handoverTimeoutMs = Number(process.env.HANDOVER_TIMEOUT_MS ?? 30_000);
const seconds = (ms) => `${(ms / 1000).toFixed(2)} s`;

let server;
let address = process.env.CONSUL_HTTP_ADDR;
if (!address) {
  server = await startConsulTestServer({ sessionTtlMinMs: 100 });
  address = server.url;
  log(`Consul-compatible test server on ${address}`);
}
const env = lockEnv({ ...process.env, CONSUL_HTTP_ADDR: address });
log(`session TTL ${env.BATON_SESSION_TTL}, lock-delay ${env.BATON_LOCK_DELAY}, key '${ELECTION_KEY}'`);

/** pid → { name, child, exited } */
const children = new Map();
const unexpectedExits = [];
let stopping = false;
// Never leave candidates behind, however this process ends.
process.once('exit', () => {
  for (const { child } of children.values()) if (child.exitCode === null) child.kill('SIGKILL');
});
function start(name, script, extraEnv = {}) {
  const child = spawn(process.execPath, [fileURLToPath(new URL(script, import.meta.url))], {
    env: { ...env, ...extraEnv },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      if (!stopping && signal !== 'SIGKILL' && !(signal === 'SIGTERM' || code === 0)) {
        log(`${name} exited unexpectedly (code ${code}, signal ${signal})`);
      }
      if (!stopping && code !== null && code !== 0) unexpectedExits.push(`${name} exited with code ${code}`);
      resolve({ code, signal });
    }),
  );
  children.set(child.pid, { name, child, exited });
}

const provider = await createLockProvider(env);
const election = new Election(provider, ELECTION_KEY);
const stopWatching = new AbortController();
let latest = null;
let watchError;
let wake = () => {};
const watching = (async () => {
  try {
    for await (const info of election.observe({ signal: stopWatching.signal })) {
      latest = info;
      wake();
    }
  } catch (error) {
    watchError = error;
    wake();
  }
})();

/** Waits until the observed leader satisfies `accept`, or fails after `timeoutMs`. */
async function leaderWhere(accept, what, timeoutMs = handoverTimeoutMs) {
  const deadline = performance.now() + timeoutMs;
  while (!(latest && accept(latest))) {
    if (watchError) throw new Error(`observing the election failed: ${watchError.message}`);
    const left = deadline - performance.now();
    if (left <= 0) throw new Error(`no ${what} within ${seconds(timeoutMs)}`);
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, left);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
  return latest;
}

async function shutdown() {
  stopping = true;
  for (const { child } of children.values()) if (child.exitCode === null) child.kill('SIGTERM');
  await Promise.all([...children.values()].map((c) => c.exited));
  stopWatching.abort();
  await watching;
  await provider.close();
  await server?.close();
}

let failed = false;
try {
  start('observer', 'observer.mjs');
  for (let i = 1; i <= 3; i++) start(`candidate-${i}`, 'candidate.mjs', { CANDIDATE_NAME: `candidate-${i}` });

  const first = await leaderWhere(() => true, 'leader');
  log(`first leader: ${first.id} (term ${first.term})`);
  await new Promise((resolve) => setTimeout(resolve, killAfterMs));

  const crashed = await leaderWhere(() => true, 'leader');
  const victim = children.get(crashed.pid);
  if (!victim) throw new Error(`the leader's pid ${crashed.pid} is not one of the demo's candidates`);
  log(`killing the leader ${crashed.id} (pid ${crashed.pid}) with SIGKILL: a crash, nothing is released`);
  const killedAt = performance.now();
  victim.child.kill('SIGKILL');
  const second = await leaderWhere((info) => info.term > crashed.term, 'leader after the crash');
  log(
    `crash handover: ${second.id} leads term ${second.term}, ${seconds(performance.now() - killedAt)} after the kill`,
  );

  const resigning = children.get(second.pid);
  if (!resigning) throw new Error(`the leader's pid ${second.pid} is not one of the demo's candidates`);
  log(`stopping the leader ${second.id} (pid ${second.pid}) with SIGTERM: it resigns`);
  const stoppedAt = performance.now();
  resigning.child.kill('SIGTERM');
  const third = await leaderWhere((info) => info.term > second.term, 'leader after the resignation');
  log(
    `resign handover: ${third.id} leads term ${third.term}, ${seconds(performance.now() - stoppedAt)} after SIGTERM`,
  );
} catch (error) {
  failed = true;
  log(`FAILED: ${error.message}`);
} finally {
  await shutdown();
}
log(failed ? 'failed' : 'done');
process.exit(failed ? 1 : 0);
