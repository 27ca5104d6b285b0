// A real etcd (Debian's etcd-server) as the lock server of a chaos run, started by @baton/test-servers' `startEtcd`
// (the backend's own tests use it), with a history of the lock keys read from etcd itself: a watch on the
// backend's prefix, from revision 1, resumed after every restart from the last revision it saw. etcd's
// revisions order the events exactly; their times are when the watch delivered them (etcd stamps no time).

import { startEtcd } from '@baton/test-servers/etcd';

const PREFIX = 'baton/';

/**
 * @typedef {object} EtcdEvent one change of a key under the prefix, as the watch delivered it
 * @property {number} rev the change's revision (mod_revision; a delete's revision)
 * @property {'put' | 'delete'} type
 * @property {string} key full key
 * @property {number} createRevision the key's create revision (0 for a delete)
 * @property {string} lease the key's lease id (puts)
 * @property {number} at epoch ms the harness received it
 */

/**
 * Leases from etcd's history of the lock keys. A put that creates `baton/lock/<key>` is a grant, its
 * create revision the fence; the key's deletion ends it: `released` when the lock-delay guard
 * (`baton/delay/<key>`) went in the same revision (baton's release deletes both in one txn), else
 * `expired` (the session lease ran out: etcd deleted the key, the guard stays for the lock-delay).
 * @param {EtcdEvent[]} events
 * @returns {import('./checker.mjs').Lease[]}
 */
export function leasesFromEtcdEvents(events) {
  const sorted = [...events].sort((a, b) => a.rev - b.rev);
  const guardDeletes = new Set(
    sorted
      .filter((e) => e.type === 'delete' && e.key.startsWith(`${PREFIX}delay/`))
      .map((e) => `${e.rev} ${e.key.slice(`${PREFIX}delay/`.length)}`),
  );
  const leases = [];
  const open = new Map();
  for (const event of sorted) {
    if (!event.key.startsWith(`${PREFIX}lock/`)) continue;
    const key = event.key.slice(`${PREFIX}lock/`.length);
    if (event.type === 'put') {
      if (event.createRevision !== event.rev) continue; // a published value, not a grant
      const lease = {
        key,
        owner: event.lease,
        fence: event.createRevision,
        start: event.at,
        end: undefined,
        endKind: 'held',
      };
      leases.push(lease);
      open.set(key, lease);
      continue;
    }
    const lease = open.get(key);
    if (!lease) continue;
    open.delete(key);
    lease.end = event.at;
    lease.endKind = guardDeletes.has(`${event.rev} ${key}`) ? 'released' : 'expired';
  }
  return leases;
}

const b64 = (text) => Buffer.from(text).toString('base64');
const unb64 = (text) => Buffer.from(text ?? '', 'base64').toString('utf8');

/** The end of the range of every key starting with `start` (ASCII prefixes only). */
function rangeEnd(start) {
  return start.slice(0, -1) + String.fromCharCode(start.charCodeAt(start.length - 1) + 1);
}

/**
 * Watches every key under the prefix from revision `from`, through etcd's JSON gateway, until `signal`
 * aborts; reconnects (from the revision after the last one seen) whenever the stream breaks.
 */
async function watchForever(endpoint, onEvent, signal) {
  let next = 1;
  while (!signal.aborted) {
    try {
      const response = await fetch(`${endpoint}/v3/watch`, {
        method: 'POST',
        body: JSON.stringify({
          create_request: {
            key: b64(PREFIX),
            range_end: b64(rangeEnd(PREFIX)),
            start_revision: String(next),
          },
        }),
        signal,
      });
      let buffered = '';
      for await (const chunk of response.body) {
        buffered += Buffer.from(chunk).toString('utf8');
        let newline = buffered.indexOf('\n');
        while (newline >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          newline = buffered.indexOf('\n');
          if (line === '') continue;
          const result = JSON.parse(line).result;
          const at = Date.now();
          for (const e of result?.events ?? []) {
            const rev = Number(e.kv.mod_revision);
            next = Math.max(next, rev + 1);
            onEvent({
              rev,
              type: e.type === 'DELETE' ? 'delete' : 'put',
              key: unb64(e.kv.key),
              createRevision: Number(e.kv.create_revision ?? 0),
              lease: String(e.kv.lease ?? '0'),
              at,
            });
          }
        }
      }
    } catch {
      // The server went away (a restart) or the run ended: try again from the next revision.
    }
    if (!signal.aborted) await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * etcd on free ports in a temporary data directory (@baton/test-servers' starter: shortened raft timing so 2 s
 * sessions are allowed). `restart(downMs)`: kill -9, wait, start again on the same ports and data.
 * @returns {Promise<import('./lock-servers.mjs').LockServer>}
 */
export async function startEtcdLockServer({ onEvent = () => {} } = {}) {
  const server = await startEtcd();
  const events = new Map();
  const stop = new AbortController();
  const watching = watchForever(
    server.endpoint,
    (event) => {
      const id = `${event.rev} ${event.key}`;
      if (events.has(id)) return;
      events.set(id, event);
      onEvent({ ...event, type: 'etcd-event', change: event.type });
    },
    stop.signal,
  );
  return {
    name: 'etcd',
    target: { host: '127.0.0.1', port: server.port },
    env: (port) => ({
      BATON_BACKEND: 'etcd',
      ETCD_ENDPOINTS: `http://127.0.0.1:${port}`,
      BATON_ETCD_PREFIX: PREFIX,
    }),
    loseAnswers: undefined,
    clear: () => {},
    async restart(downMs) {
      const pid = server.pid;
      await server.kill();
      onEvent({ type: 'lock-server-killed', pid });
      await new Promise((resolve) => setTimeout(resolve, downMs));
      await server.restart();
      onEvent({ type: 'lock-server-restarted', pid: server.pid });
    },
    history: async () => {
      // The watch delivers what the last workers did a moment later.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const list = [...events.values()];
      return { leases: leasesFromEtcdEvents(list), grantViolations: [], exactFences: true, records: list };
    },
    close: async () => {
      stop.abort();
      await watching;
      await server.close();
    },
  };
}
