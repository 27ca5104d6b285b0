import type { Clock } from '@baton/core';
import type { FailNextOptions } from './faults.js';
import type { LockHistoryRecord } from './lock-history.js';
import type { RequestLogEntry } from './request-log.js';

/**
 * Options of {@link startConsulTestServer}. Defaults follow `consul agent -dev`; the knobs marked test-only
 * do not exist in Consul.
 */
export interface ConsulTestServerOptions {
  /** Interface to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Port to listen on; 0 picks a free one. Default 0. */
  port?: number;
  /** The agent's node name (sessions are bound to it). Default `baton-test-node`. */
  nodeName?: string;
  /** Default `dc1`. Requests with another `?dc=` get 500 `No path to datacenter`. */
  datacenter?: string;
  /** Smallest accepted session TTL, like Consul's `session_ttl_min`. Default 10 000 (Consul's). Test-only when lowered. */
  sessionTtlMinMs?: number;
  /** A session expires after TTL × this without renewal. Default 2 (Consul's). */
  ttlMultiplier?: number;
  /** Cap applied to a session's LockDelay when it starts. Default 60 000 (Consul's). */
  maxLockDelayMs?: number;
  /**
   * Enables ACLs: each listed token is a management token, a request without a token is anonymous (denied),
   * any other token is unknown (403 `ACL not found`). The token is read from `?token=`, `X-Consul-Token` or
   * `Authorization: Bearer`. `/v1/status/*` needs no token.
   */
  aclTokens?: string[];
  /** Drives TTL expiry, lock-delay, blocking-query waits, elections and latency. Default `systemClock`. */
  clock?: Clock;
  /** Cap for `?wait` (and the 5 min default). Default 600 000 (Consul's 10 min). */
  maxBlockingWaitMs?: number;
  /** Serve HTTPS with this PEM key and certificate (for clients configured with a CA file). Default plain HTTP. */
  tls?: { key: string | Buffer; cert: string | Buffer };
}

/** A KV entry as {@link ConsulTestServer.getEntry} returns it. */
export interface ConsulTestEntry {
  Key: string;
  /** The value decoded as UTF-8 (not base64), `null` when empty. */
  Value: string | null;
  Flags: number;
  /** The holding session, absent when unlocked. */
  Session?: string;
  LockIndex: number;
  CreateIndex: number;
  ModifyIndex: number;
}

/** The fault knobs of a {@link ConsulTestServer}. */
export interface ConsulTestServerFaults {
  /**
   * Makes the next `count` requests (matching `pathPrefix` / `method` when given) fail with `status` (default
   * 503) and a plain-text `body` (default `No cluster leader`; Consul's rate-limit text for 429).
   */
  failNext(count: number, options?: FailNextOptions): void;
  /** Adds `ms` (on the server clock) before every response. 0 removes it. */
  setLatency(ms: number): void;
  /** Accepts connections but holds every request, and every response not yet sent, until {@link resume}. */
  pause(): void;
  resume(): void;
  /** Turns the node's `serfHealth` check critical: every session bound to it is invalidated at once. */
  failNodeCheck(): void;
  /** Turns `serfHealth` passing again (invalidated sessions stay gone). */
  restoreNodeCheck(): void;
  /**
   * Simulates a leader election lasting `durationMs` (default 1000, on the server clock): requests that need a
   * leader get 500 `No cluster leader` (`?stale` reads still answer, with `X-Consul-KnownLeader: false`), no
   * session expires meanwhile, and the new leader restarts every session TTL timer from scratch.
   */
  leaderElection(options?: { durationMs?: number }): void;
  /** Removes every fault: scripted failures, latency, pause, node check, running election. */
  clear(): void;
}

/** Request counters. */
export interface ConsulTestServerRequests {
  /** Requests received since start or the last {@link reset}. */
  total(): number;
  /** Requests counted under `"METHOD /v1/path-pattern"`, e.g. `PUT /v1/txn`, `PUT /v1/session/renew`, `GET /v1/kv`. */
  count(pattern: string): number;
  reset(): void;
  /** Every request in arrival order. */
  log(): ReadonlyArray<RequestLogEntry>;
}

/** A running Consul-compatible test server. */
export interface ConsulTestServer {
  /** `http://HOST:PORT` (`https://` with {@link ConsulTestServerOptions.tls}). */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly faults: ConsulTestServerFaults;
  readonly requests: ConsulTestServerRequests;
  /** Every committed lock acquisition and how it ended, oldest first. */
  history(): ReadonlyArray<LockHistoryRecord>;
  /** The committed KV entry at `key`, or `undefined`. */
  getEntry(key: string): ConsulTestEntry | undefined;
  /** Stops listening, drops every connection (pending requests get no answer) and every timer. */
  close(): Promise<void>;
}
