/**
 * The simulated `consul agent -dev`: one server that is its own leader, one node with a `serfHealth` check,
 * and the server-side logic behind the RPCs (`Session.Apply`, `KVS.Apply`, TTL timers, leader elections).
 * HTTP concerns (parsing, ACL, meta headers) live in the endpoint modules.
 */
import { randomUUID } from 'node:crypto';
import type { Clock, TimerHandle } from '@baton/core';
import { rpcError } from './errors.js';
import { formatGoDuration, NS, parseGoDuration } from './go-duration.js';
import {
  type EntryInput,
  kvsDelete,
  kvsDeleteCas,
  kvsDeleteTree,
  kvsLock,
  kvsSet,
  kvsSetCas,
  kvsUnlock,
} from './kv-ops.js';
import { LockDelays } from './lock-delay.js';
import { LockHistory } from './lock-history.js';
import { checkUpdateTxn, type SessionOpContext, sessionCreateTxn, sessionDestroyTxn } from './session-ops.js';
import { SessionTimers } from './session-timers.js';
import {
  type ServiceCheckRef,
  type SessionBehavior,
  type SessionRecord,
  StateStore,
  type WriteTxn,
} from './state.js';

/** Consul's `structs.SessionTTLMax`. */
const SESSION_TTL_MAX_NS = 24n * NS.HOUR;

/** The id of the node health check every default session is bound to. */
export const SERF_CHECK_ID = 'serfHealth';

/** Internal writes a dev agent makes before serving (Raft configuration, node and check registration). */
const BOOT_INDEX = 10;

/** Resolved server settings. */
export interface AgentConfig {
  readonly nodeName: string;
  readonly datacenter: string;
  readonly clock: Clock;
  readonly sessionTtlMinNs: bigint;
  readonly ttlMultiplier: number;
  readonly maxLockDelayNs: bigint;
  readonly defaultBlockingWaitMs: number;
  readonly maxBlockingWaitMs: number;
  /** `undefined` when ACLs are disabled. */
  readonly aclTokens: ReadonlySet<string> | undefined;
}

/** A session create request after decoding and Consul's check fix-ups. */
export interface SessionSpec {
  readonly name: string;
  readonly node: string;
  readonly lockDelayNs: bigint;
  readonly behavior: string;
  readonly ttl: string;
  readonly nodeChecks: readonly string[] | null;
  readonly serviceChecks: readonly ServiceCheckRef[] | null;
  readonly checks: readonly string[] | null;
}

/** The KV write operations of `PUT`/`DELETE /v1/kv`. */
export type KvWriteOp = 'set' | 'cas' | 'lock' | 'unlock' | 'delete' | 'delete-cas' | 'delete-tree';

/** The server behind the HTTP API. */
export class ConsulAgent {
  readonly store = new StateStore(BOOT_INDEX);
  readonly history = new LockHistory();
  readonly lockDelays: LockDelays;
  readonly timers: SessionTimers;
  readonly nodeId = randomUUID();
  #electionTimer: TimerHandle | undefined;
  #electionStartedAt = 0;

  constructor(readonly config: AgentConfig) {
    this.lockDelays = new LockDelays(config.clock);
    this.timers = new SessionTimers(config.clock, config.ttlMultiplier, (id) => this.#expire(id));
    const node = this.store.begin();
    node.nodePut({
      id: this.nodeId,
      name: config.nodeName,
      address: '127.0.0.1',
      datacenter: config.datacenter,
      createIndex: node.index,
      modifyIndex: node.index,
    });
    node.commit();
    const check = this.store.begin();
    check.checkPut({
      node: config.nodeName,
      checkId: SERF_CHECK_ID,
      name: 'Serf Health Status',
      status: 'passing',
      output: 'Agent alive and reachable',
      createIndex: check.index,
      modifyIndex: check.index,
    });
    check.commit();
  }

  /** False during a simulated leader election. */
  get hasLeader(): boolean {
    return this.#electionTimer === undefined;
  }

  /** Milliseconds since the last contact with a leader: 0 while there is one. */
  lastContactMs(): number {
    return this.hasLeader ? 0 : this.config.clock.monotonicNow() - this.#electionStartedAt;
  }

  /**
   * Starts a leader election lasting `durationMs`: requests that need a leader fail with "No cluster leader"
   * and no session expires; when it ends the new leader restarts every TTL timer from scratch.
   */
  startElection(durationMs: number): void {
    const { clock } = this.config;
    if (this.#electionTimer !== undefined) clock.clearTimeout(this.#electionTimer);
    else this.#electionStartedAt = clock.monotonicNow();
    this.timers.clearAll();
    this.#electionTimer = clock.setTimeout(() => this.endElection(), Math.max(0, durationMs));
  }

  /** Ends a running election now (no-op otherwise). */
  endElection(): void {
    if (this.#electionTimer === undefined) return;
    this.config.clock.clearTimeout(this.#electionTimer);
    this.#electionTimer = undefined;
    for (const session of this.store.sessions()) this.timers.reset(session);
  }

  /** Runs `fn` in a write transaction: commits when it returns, aborts when it throws. */
  write<T>(fn: (ctx: SessionOpContext) => T): T {
    const txn = this.store.begin();
    try {
      const result = fn(this.opContext(txn));
      txn.commit();
      return result;
    } catch (error) {
      txn.abort();
      throw error;
    }
  }

  /** The context KV and session operations run with. */
  opContext(txn: WriteTxn): SessionOpContext {
    return {
      txn,
      history: this.history,
      now: () => this.config.clock.monotonicNow(),
      lockDelays: this.lockDelays,
      maxLockDelayNs: this.config.maxLockDelayNs,
      onSessionDestroyed: (id) => this.timers.clear(id),
    };
  }

  /** `KVS.Apply`: the lock-delay pre-check (no Raft entry when it refuses), then the write. */
  kvsApply(op: KvWriteOp, input: EntryInput): boolean {
    if (op === 'lock' && this.lockDelays.active(input.key)) return false;
    return this.write((ctx) => {
      switch (op) {
        case 'set':
          kvsSet(ctx, input);
          return true;
        case 'cas':
          return kvsSetCas(ctx, input) !== undefined;
        case 'lock':
          return kvsLock(ctx, input) !== undefined;
        case 'unlock':
          return kvsUnlock(ctx, input) !== undefined;
        case 'delete':
          kvsDelete(ctx, input.key);
          return true;
        case 'delete-cas':
          return kvsDeleteCas(ctx, input.key, input.modifyIndex ?? 0);
        case 'delete-tree':
          kvsDeleteTree(ctx, input.key);
          return true;
      }
    });
  }

  /** `Session.Apply` (create): validates like Consul and returns the new session's id. */
  createSession(spec: SessionSpec): string {
    if (spec.node === '') throw rpcError('Must provide Node');
    let behavior: SessionBehavior;
    if (spec.behavior === '' || spec.behavior === 'release') behavior = 'release';
    else if (spec.behavior === 'delete') behavior = 'delete';
    else throw rpcError(`Invalid Behavior setting '${spec.behavior}'`);
    if (spec.ttl !== '') {
      let ttl: bigint;
      try {
        ttl = parseGoDuration(spec.ttl);
      } catch (error) {
        throw rpcError(`Session TTL '${spec.ttl}' invalid: ${(error as Error).message}`);
      }
      const min = this.config.sessionTtlMinNs;
      if (ttl !== 0n && (ttl < min || ttl > SESSION_TTL_MAX_NS)) {
        throw rpcError(
          `Invalid Session TTL '${ttl}', must be between [${formatGoDuration(min)}=${formatGoDuration(SESSION_TTL_MAX_NS)}]`,
        );
      }
    }
    let id = randomUUID();
    while (this.store.session(id)) id = randomUUID();
    const stored = this.write((ctx) =>
      sessionCreateTxn(ctx, {
        id,
        name: spec.name,
        node: spec.node,
        lockDelayNs: spec.lockDelayNs,
        behavior,
        ttl: spec.ttl,
        nodeChecks: spec.nodeChecks,
        serviceChecks: spec.serviceChecks,
        checks: spec.checks,
      }),
    );
    if (this.hasLeader) this.timers.reset(stored);
    return id;
  }

  /** `Session.Apply` (destroy): idempotent. */
  destroySession(id: string): void {
    this.write((ctx) => sessionDestroyTxn(ctx, id));
    this.timers.clear(id);
  }

  /** `Session.Renew`: restarts the TTL timer; `undefined` when the session does not exist. */
  renewSession(id: string): SessionRecord | undefined {
    const session = this.store.session(id);
    if (!session) return undefined;
    this.timers.reset(session);
    return session;
  }

  /** Sets the node's `serfHealth` status; `critical` invalidates every session bound to it. */
  setNodeHealth(passing: boolean): void {
    const status = passing ? 'passing' : 'critical';
    const output = passing ? 'Agent alive and reachable' : 'Agent not live or unreachable';
    if (this.store.check(SERF_CHECK_ID)?.status === status) return;
    this.write((ctx) => checkUpdateTxn(ctx, SERF_CHECK_ID, status, output));
  }

  /** Stops every timer the agent owns. */
  shutdown(): void {
    this.timers.clearAll();
    if (this.#electionTimer !== undefined) this.config.clock.clearTimeout(this.#electionTimer);
    this.#electionTimer = undefined;
  }

  #expire(id: string): void {
    // A TTL expiry is a Raft write by the leader; without one the invalidation waits for the next leader.
    if (!this.hasLeader) return;
    this.write((ctx) => sessionDestroyTxn(ctx, id));
  }
}
