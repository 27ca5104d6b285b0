/**
 * A Consul-compatible HTTP server for tests (`@baton/test-servers/consul-server`): sessions, KV, transactions and
 * blocking queries with Consul's semantics and error bodies, plus fault injection, request counters and a
 * server-side lock history. Consul itself cannot be installed here; every Consul test runs against this.
 */
export type { FailNextOptions } from './faults.js';
export type { LockEnd, LockHistoryRecord } from './lock-history.js';
export type { RequestLogEntry } from './request-log.js';
export { startConsulTestServer } from './server.js';
export type {
  ConsulTestEntry,
  ConsulTestServer,
  ConsulTestServerFaults,
  ConsulTestServerOptions,
  ConsulTestServerRequests,
} from './types.js';
