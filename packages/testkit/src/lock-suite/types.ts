import type { LockProvider, LockSession, SessionOptions } from '@baton/core';

/**
 * The runner's test-registration function (vitest's or jest's `it`/`test`, node:test's `test`): a name, an
 * async body, and an optional timeout in milliseconds.
 */
export type TestFn = (name: string, fn: () => Promise<void>, timeoutMs?: number) => void;

/** What the backend actually stored for a key, read directly from the backend (bypassing the provider). */
export interface StoredLock {
  /** Session/owner currently holding the key, or undefined when free. */
  holder: string | undefined;
  /** The fence of the last acquisition recorded for the key. */
  fence: number;
  /**
   * Sessions waiting in the key's line, in the order the backend will serve them (backends with the
   * `fairQueue` capability must report it; the fairness group waits on it). Places the backend has not yet
   * dropped are listed even when their session is gone.
   */
  waiters?: readonly string[];
}

/**
 * Everything the suite needs from one backend instance. The factory creates a fresh harness per test, with
 * keys that do not collide with other tests (the suite also prefixes keys randomly).
 */
export interface LockHarness {
  /** The provider under test. */
  provider: LockProvider;
  /** Session options the suite uses by default (short TTLs where the backend allows). */
  sessionOptions: SessionOptions;
  /** Backend-direct read of a key's stored state; `null` when the backend has no record of it. */
  inspect(key: string): Promise<StoredLock | null>;
  /**
   * Simulate a crashed process: stop renewing `session` and release nothing. The backend must then expire
   * it on its own.
   */
  crash(session: LockSession): Promise<void>;
  /**
   * Make the next backend request(s) of this provider fail at the transport level (connection reset, 5xx),
   * as if the server were unreachable. The returned function undoes it.
   */
  breakTransport(): Promise<() => Promise<void>>;
  /** Delete the key's record at the backend (operator action), if the backend allows it. */
  deleteKey?(key: string): Promise<void>;
  /** Frees every resource of this harness (sessions are destroyed by the suite). */
  close(): Promise<void>;
}

/** Timing and capabilities the suite must respect for one backend. */
export interface LockSuiteOptions {
  /**
   * Upper bound, in ms, from a crash until another session can take the crashed session's key, with no
   * lock-delay configured (memory: TTL; Consul: 2×TTL; DynamoDB: lease duration + margin, after a first
   * observation). The suite waits up to this plus a generous slack.
   */
  expiryBoundMs: number;
  /** Lock-delay the suite configures for its lock-delay group; 0 or absent skips that group. */
  lockDelayMs?: number;
  /** Resolution of the backend's timing, in ms; assertions allow this much slack. */
  granularityMs?: number;
  /** Skip the group that deletes keys (backends whose keys must never be deleted). */
  skipKeyDeletion?: boolean;
  /**
   * The backend keeps a record of every key it ever granted (DynamoDB's `counter` fence mode keeps the fence
   * in the key's item): skips the case that counts the records left after releases. Without it, a released key
   * must leave no record (`inspect` answers `null`), so that keys do not pile up with the number of tasks.
   */
  retainsReleasedKeys?: boolean;
  /**
   * How far, in ms, a time the backend reports (`acquiredAt`, a waiter's `since`) may lie outside the call
   * that made it, measured on this machine's clock. Every server the suite runs against is local, so only
   * clock reading order matters: default 100.
   */
  holderClockSkewMs?: number;
  /**
   * Resolution of the backend's remaining-lease figure, in ms (etcd reports whole seconds): the
   * holder-times group allows it when it checks that the figure falls or rises. Default `granularityMs`.
   */
  leaseResolutionMs?: number;
  /** Number of sessions and rounds in the contended fuzz group. */
  fuzz?: { sessions?: number; keys?: number; rounds?: number };
}

/** Factory handing the suite a fresh harness per test. */
export type LockHarnessFactory = () => Promise<LockHarness>;
