// Settings shared by the example's processes. Every value can be overridden from the environment, so the
// same scripts run against a real Consul agent (set CONSUL_HTTP_ADDR, and a TTL of at least 10s).

/** The election key every process uses. */
export const ELECTION_KEY = process.env.LEADER_KEY ?? 'examples/leader/reports';

/**
 * Environment for `createLockProvider()`: the Consul backend with short session TTLs, which only the
 * Consul-compatible test server accepts (real Consul's floor is 10s).
 */
export function lockEnv(env = process.env) {
  return {
    BATON_BACKEND: 'consul',
    BATON_SESSION_TTL: '1s',
    BATON_CONSUL_ALLOW_SHORT_TTL: 'true',
    BATON_LOCK_DELAY: '1s',
    ...env,
  };
}

/** Prints one line prefixed with the process's name, padded so the demo's output lines up. */
export function logger(name) {
  return (message) => process.stdout.write(`${name.padEnd(12)}| ${message}\n`);
}

/** An AbortSignal that aborts on SIGINT or SIGTERM. */
export function shutdownSignal() {
  const controller = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => controller.abort(new Error(sig)));
  return controller.signal;
}

/** One line describing a leader (or the absence of one). */
export function describeLeader(info) {
  if (!info) return 'no leader';
  const status = info.status ? `, ${info.status}` : '';
  return `leader is ${info.id} (term ${info.term}, pid ${info.pid}${status})`;
}

/** Resolves once `signal` has aborted (at once if it already has). */
export function untilAborted(signal) {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
}
