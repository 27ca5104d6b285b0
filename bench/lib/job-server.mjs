// Long-lived job servers for the benchmarks that start workers first and add tasks afterwards (latency,
// lock-requests): spawn, release with `go`, and wait until the workers have settled.

import { spawnChild } from './child.mjs';

/**
 * Spawns a job server (`baton-worker.mjs` or `peer-worker.mjs`) with `config`, waits until it is ready and
 * releases it (`go`). Returns the child handle.
 */
export async function startJobServer(script, config) {
  const child = spawnChild(script, config);
  try {
    await child.next('ready');
    child.send({ type: 'go' });
    await child.next('started');
    return child;
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

/** The newest queued message of `type` (older ones dropped), or the next one to arrive. */
export async function latest(child, type, timeoutMs) {
  let last;
  for (let msg = child.poll(type); msg; msg = child.poll(type)) last = msg;
  return last ?? child.next(type, timeoutMs);
}

/**
 * Bucket mode: waits until the job server's workers (started with `progressEveryMs`) hold all `buckets`
 * between them, spread evenly (at most one apart), and the spread has not changed for `quietMs`. Returns
 * `{ held, ms }`, or throws after `timeoutMs`.
 */
export async function waitBalanced(child, buckets, { timeoutMs = 30_000, quietMs = 1_000 } = {}) {
  const t0 = performance.now();
  let since;
  let last = '';
  for (;;) {
    const { held, stats } = await latest(child, 'progress', 10_000);
    const key = `${held.join(',')}/${stats.bucketsAcquired}`;
    const even = held.reduce((a, b) => a + b, 0) === buckets && Math.max(...held) - Math.min(...held) <= 1;
    const now = performance.now();
    if (!even || key !== last) since = now;
    last = key;
    if (even && now - since >= quietMs) return { held, ms: now - t0 };
    if (now - t0 > timeoutMs) {
      throw new Error(`buckets not spread evenly within ${timeoutMs} ms (held ${held.join(', ')})`);
    }
  }
}
