/**
 * The server's state store: Consul's memdb tables reduced to what the KV, session and health endpoints need,
 * a single global Raft-like index, and per-table indexes (the "index" table of Consul's state store).
 *
 * Every write goes through a {@link WriteTxn}: it takes the next global index up front (a Raft log entry is
 * consumed even when the operation then fails, as in Consul), stages its changes, and either commits them all
 * at once (bumping the index of every touched table and waking blocking queries) or aborts.
 */

/** A KV entry. `value` is `null` when empty: Consul stores an empty value as nil and returns `null`. */
export interface DirEntry {
  readonly key: string;
  readonly value: Buffer | null;
  readonly flags: bigint;
  /** The holding session's id, `''` when unlocked. */
  readonly session: string;
  readonly lockIndex: number;
  readonly createIndex: number;
  readonly modifyIndex: number;
}

/** What happens to a session's locks when it is invalidated. */
export type SessionBehavior = 'release' | 'delete';

/** A service check a session is bound to. */
export interface ServiceCheckRef {
  readonly id: string;
  readonly namespace: string;
}

/** A session as stored. */
export interface SessionRecord {
  readonly id: string;
  readonly name: string;
  readonly node: string;
  readonly lockDelayNs: bigint;
  readonly behavior: SessionBehavior;
  readonly ttl: string;
  readonly nodeChecks: readonly string[] | null;
  readonly serviceChecks: readonly ServiceCheckRef[] | null;
  /** The pre-1.7 `Checks` field, kept only when it says something `NodeChecks` does not. */
  readonly checks: readonly string[] | null;
  readonly createIndex: number;
  readonly modifyIndex: number;
}

/** Health of a check, as Consul spells it. */
export type CheckStatus = 'passing' | 'warning' | 'critical';

/** A node-level health check. */
export interface HealthCheck {
  readonly node: string;
  readonly checkId: string;
  readonly name: string;
  readonly status: CheckStatus;
  readonly output: string;
  readonly createIndex: number;
  readonly modifyIndex: number;
}

/** A catalog node. */
export interface NodeRecord {
  readonly id: string;
  readonly name: string;
  readonly address: string;
  readonly datacenter: string;
  readonly createIndex: number;
  readonly modifyIndex: number;
}

/** The tables whose indexes blocking queries watch. */
export type Table = 'kvs' | 'tombstones' | 'sessions' | 'checks' | 'nodes';

type ChangeListener = (tables: ReadonlySet<Table>) => void;

/** Byte-wise key order, as memdb's radix tree iterates. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** The committed state. Read directly for queries; write through {@link StateStore.begin}. */
export class StateStore {
  #index: number;
  readonly #kvs = new Map<string, DirEntry>();
  readonly #tombstones = new Map<string, number>();
  readonly #sessions = new Map<string, SessionRecord>();
  readonly #checks = new Map<string, HealthCheck>();
  readonly #nodes = new Map<string, NodeRecord>();
  readonly #tableIndex = new Map<Table, number>();
  readonly #listeners = new Set<ChangeListener>();

  /** @param bootIndex the last index used by internal writes before the first client request */
  constructor(bootIndex: number) {
    this.#index = bootIndex;
  }

  /** The last global index handed out. */
  get lastIndex(): number {
    return this.#index;
  }

  /** The index of the last write that changed `table` (0 when never written). */
  tableIndex(table: Table): number {
    return this.#tableIndex.get(table) ?? 0;
  }

  /** Consul's `kvsMaxIndex`: the later of the KV table and the tombstone graveyard. */
  kvsMaxIndex(): number {
    return Math.max(this.tableIndex('kvs'), this.tableIndex('tombstones'));
  }

  kvGet(key: string): DirEntry | undefined {
    return this.#kvs.get(key);
  }

  /** Entries whose key starts with `prefix`, in key order. */
  kvList(prefix: string): DirEntry[] {
    const out: DirEntry[] = [];
    for (const entry of this.#kvs.values()) if (entry.key.startsWith(prefix)) out.push(entry);
    return out.sort((a, b) => compareKeys(a.key, b.key));
  }

  /** The highest tombstone index under `prefix` (0 when none). */
  graveyardMaxIndex(prefix: string): number {
    let max = 0;
    for (const [key, index] of this.#tombstones) if (key.startsWith(prefix) && index > max) max = index;
    return max;
  }

  session(id: string): SessionRecord | undefined {
    return this.#sessions.get(id);
  }

  /** All sessions, ordered by id as memdb returns them. */
  sessions(): SessionRecord[] {
    return [...this.#sessions.values()].sort((a, b) => compareKeys(a.id, b.id));
  }

  check(checkId: string): HealthCheck | undefined {
    return this.#checks.get(checkId);
  }

  checks(): HealthCheck[] {
    return [...this.#checks.values()].sort((a, b) => compareKeys(a.checkId, b.checkId));
  }

  node(name: string): NodeRecord | undefined {
    return this.#nodes.get(name);
  }

  /** Starts a write at the next global index. */
  begin(): WriteTxn {
    this.#index += 1;
    return new WriteTxn(this, this.#index);
  }

  /** A read-only view for transactions that only read: never commit it (it consumes no index). */
  view(): WriteTxn {
    return new WriteTxn(this, this.#index);
  }

  /** Calls `listener` after every commit that changed at least one table. Returns the unsubscribe function. */
  onChange(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** @internal applies a committed transaction's staged changes. */
  apply(index: number, staged: Staged): ReadonlySet<Table> {
    const touched = new Set<Table>();
    for (const [key, entry] of staged.kvs) {
      if (entry === null) this.#kvs.delete(key);
      else this.#kvs.set(key, entry);
      touched.add('kvs');
    }
    for (const [key, at] of staged.tombstones) {
      this.#tombstones.set(key, at);
      touched.add('tombstones');
    }
    for (const [id, session] of staged.sessions) {
      if (session === null) this.#sessions.delete(id);
      else this.#sessions.set(id, session);
      touched.add('sessions');
    }
    for (const [id, check] of staged.checks) {
      this.#checks.set(id, check);
      touched.add('checks');
    }
    for (const [name, node] of staged.nodes) {
      this.#nodes.set(name, node);
      touched.add('nodes');
    }
    for (const table of touched) this.#tableIndex.set(table, index);
    if (touched.size > 0) for (const listener of [...this.#listeners]) listener(touched);
    return touched;
  }
}

interface Staged {
  kvs: Map<string, DirEntry | null>;
  tombstones: Map<string, number>;
  sessions: Map<string, SessionRecord | null>;
  checks: Map<string, HealthCheck>;
  nodes: Map<string, NodeRecord>;
}

/**
 * One atomic write. Reads see the committed state overlaid with this transaction's own changes, so later
 * operations of a `/v1/txn` see earlier ones. Nothing is visible to others until {@link WriteTxn.commit}.
 */
export class WriteTxn {
  readonly #store: StateStore;
  readonly #staged: Staged = {
    kvs: new Map(),
    tombstones: new Map(),
    sessions: new Map(),
    checks: new Map(),
    nodes: new Map(),
  };
  readonly #afterCommit: Array<() => void> = [];
  #done = false;

  /** @internal use {@link StateStore.begin} */
  constructor(
    store: StateStore,
    /** The global index every change in this transaction is written at. */
    readonly index: number,
  ) {
    this.#store = store;
  }

  kvGet(key: string): DirEntry | undefined {
    if (this.#staged.kvs.has(key)) return this.#staged.kvs.get(key) ?? undefined;
    return this.#store.kvGet(key);
  }

  kvList(prefix: string): DirEntry[] {
    const byKey = new Map<string, DirEntry>();
    for (const entry of this.#store.kvList(prefix)) byKey.set(entry.key, entry);
    for (const [key, entry] of this.#staged.kvs) {
      if (!key.startsWith(prefix)) continue;
      if (entry === null) byKey.delete(key);
      else byKey.set(key, entry);
    }
    return [...byKey.values()].sort((a, b) => compareKeys(a.key, b.key));
  }

  kvPut(entry: DirEntry): void {
    this.#staged.kvs.set(entry.key, entry);
  }

  kvDelete(key: string): void {
    this.#staged.kvs.set(key, null);
  }

  tombstone(key: string): void {
    this.#staged.tombstones.set(key, this.index);
  }

  session(id: string): SessionRecord | undefined {
    if (this.#staged.sessions.has(id)) return this.#staged.sessions.get(id) ?? undefined;
    return this.#store.session(id);
  }

  sessions(): SessionRecord[] {
    const byId = new Map<string, SessionRecord>();
    for (const session of this.#store.sessions()) byId.set(session.id, session);
    for (const [id, session] of this.#staged.sessions) {
      if (session === null) byId.delete(id);
      else byId.set(id, session);
    }
    return [...byId.values()].sort((a, b) => compareKeys(a.id, b.id));
  }

  sessionPut(session: SessionRecord): void {
    this.#staged.sessions.set(session.id, session);
  }

  sessionDelete(id: string): void {
    this.#staged.sessions.set(id, null);
  }

  check(checkId: string): HealthCheck | undefined {
    return this.#staged.checks.get(checkId) ?? this.#store.check(checkId);
  }

  checkPut(check: HealthCheck): void {
    this.#staged.checks.set(check.checkId, check);
  }

  node(name: string): NodeRecord | undefined {
    return this.#staged.nodes.get(name) ?? this.#store.node(name);
  }

  nodePut(node: NodeRecord): void {
    this.#staged.nodes.set(node.name, node);
  }

  /** Runs `effect` once this transaction commits (never when it aborts), in registration order. */
  afterCommit(effect: () => void): void {
    this.#afterCommit.push(effect);
  }

  /** Makes every staged change visible at once and runs the after-commit effects. */
  commit(): void {
    if (this.#done) throw new Error('transaction already finished');
    this.#done = true;
    // Effects (history, lock-delays, timers) run before watchers wake so woken queries see them.
    const effects = this.#afterCommit.splice(0);
    const staged = this.#staged;
    for (const effect of effects) effect();
    this.#store.apply(this.index, staged);
  }

  /** Drops every staged change. The index stays consumed, as a failed Raft apply's log entry does. */
  abort(): void {
    this.#done = true;
  }
}
