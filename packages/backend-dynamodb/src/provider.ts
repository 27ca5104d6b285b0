import { randomUUID } from 'node:crypto';
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import {
  type Clock,
  ClosedError,
  ConfigError,
  checkDuration,
  InvalidArgumentError,
  type LockCapabilities,
  type LockHolder,
  type LockProvider,
  pollingWatch,
  type SessionOptions,
  systemClock,
  validateKey,
  type WatchOptions,
  whileHolding,
} from '@baton/core';
import {
  DEFAULT_FENCE_MODE,
  DEFAULT_PARTITION_KEY,
  DEFAULT_TABLE,
  dynamoDurationBounds,
  isLocalEndpoint,
} from './config.js';
import { type EnsureTableResult, ensureLockTable } from './ensure-table.js';
import { BACKEND } from './errors.js';
import { refuseGlobalTable } from './global-table.js';
import { KnownKeys } from './known-keys.js';
import { ObservationBook } from './observations.js';
import type { FenceMode, LockRecord } from './record.js';
import { Requester } from './requester.js';
import { DynamoLockSession } from './session.js';
import { LockTable } from './table.js';

/** Options for {@link DynamoLockProvider}. */
export interface DynamoLockProviderOptions {
  /**
   * A client to use instead of building one from `region`/`endpoint`/`credentials`. The provider does not
   * destroy it on close. Give it `maxAttempts: 1`: the provider retries itself within each lease's budget.
   */
  client?: DynamoDBClient | undefined;
  /** AWS region; resolved by the SDK (AWS_REGION, profile) when omitted. `local` for a local endpoint. */
  region?: string | undefined;
  /** Endpoint URL, e.g. dynalite or DynamoDB Local. */
  endpoint?: string | undefined;
  /** Credentials; the SDK's default provider chain when omitted. Never logged. */
  credentials?: DynamoDBClientConfig['credentials'] | undefined;
  /** Lock table (default `baton_locks`). */
  table?: string | undefined;
  /** The table's string partition key attribute (default `key`). */
  partitionKey?: string | undefined;
  /** Default lease duration of sessions, ms (default 20 000; from 100 ms to 24 h). */
  ttlMs?: number | undefined;
  /**
   * Default lock-delay of sessions, ms (default 0; at most 24 h): extra wait contenders add after a lease ran
   * out.
   */
  lockDelayMs?: number | undefined;
  /** Heartbeat period, ms (default: a third of the session's lease duration; at most half of it, from 10 ms). */
  heartbeatIntervalMs?: number | undefined;
  /**
   * Safety margin a contender adds to the holder's lease duration before taking a key, ms (default: a tenth
   * of the holder's lease duration; at most 24 h).
   */
  takeoverMarginMs?: number | undefined;
  /**
   * Upper bound of a single DynamoDB request, ms (default 5 000; from 10 ms to 10 min). Each attempt is also
   * cut off when its operation's budget runs out (a heartbeat's: the time left on the lease; otherwise the
   * session TTL), so a timeout can be reported after less than this.
   */
  requestTimeoutMs?: number | undefined;
  /** Leases renewed in parallel by one session's heartbeat (default 16). */
  heartbeatConcurrency?: number | undefined;
  /**
   * How fences are drawn (default `counter`).
   *
   * - `counter`: every acquisition, of a new key too, is one conditional UpdateItem that adds 1 to the
   *   item's fence. Fences increase per key as long as lock items are never deleted: do not delete lock
   *   items and do not enable DynamoDB TTL on the table.
   * - `epoch`: a new item draws an epoch from a table-wide counter item once it exists, so fences keep
   *   increasing across deletion. A release deletes the item (unless someone waits in its line, or
   *   `lockAtLeastFor` keeps it on hold), and every kept item carries `expiresAt` for DynamoDB's TTL: the
   *   table holds about one item per key in use. Three requests for a new key, one of them on the counter
   *   item (a hot partition at high rates of new keys). The provider marks the table, and `counter`-mode
   *   providers refuse a marked table.
   */
  fenceMode?: FenceMode | undefined;
  /**
   * Use the table even if it is a global table (default `false`). Without it, the provider reads the table's
   * description once (dynamodb:DescribeTable) and refuses a table with replicas: regions replicate
   * last-writer-wins, so two regions could each grant the same key. Set it only if every worker sends its lock
   * requests to one region and nothing writes lock items in the others, or to skip the read.
   */
  allowGlobalTable?: boolean | undefined;
  /**
   * Clock for every timing decision (monotonic time only). `epoch` mode also reads its wall time, for one
   * thing: the `expiresAt` TTL attribute of kept items, which only DynamoDB's TTL deletion reads.
   */
  clock?: Clock | undefined;
}

/** The fence-mode setting, as the user writes it. */
const FENCE_MODE_FIELD = 'BATON_DYNAMODB_FENCE_MODE (fenceMode)';

const capabilities: LockCapabilities = {
  nativeWatch: false,
  minTtlMs: 100,
  lockDelay: true,
  list: true,
  forceRelease: true,
  fairQueue: true,
};

/**
 * Locks in a DynamoDB table, safe without trusting any clock but this process's monotonic one.
 *
 * - A key is one item. Taking a free key is one conditional UpdateItem that also bumps the item's fence (in
 *   the default `counter` fence mode, a new key too).
 * - A session is an owner id plus a heartbeat that rewrites each held item's record version (a fresh UUID)
 *   every heartbeat period.
 * - A contender that finds a key held remembers its record version and when it first saw it; only after the
 *   version stayed the same for the holder's lease duration (+ margin + lock-delay) on the contender's own
 *   clock does it take the key, conditional on that version.
 * - In the default `counter` fence mode items are never deleted; fences survive release and takeover. In
 *   `epoch` fence mode a release deletes the item, and a re-created item restarts above every earlier fence
 *   (a table-wide epoch counter, drawn once the item exists).
 */
export class DynamoLockProvider implements LockProvider {
  readonly backend = 'dynamodb';
  readonly capabilities = capabilities;
  readonly clock: Clock;
  /** The SDK client (add middleware to it for metrics). */
  readonly client: DynamoDBClient;
  /** Lock table name. */
  readonly table: string;
  /** Partition key attribute. */
  readonly partitionKey: string;
  /** How fences are drawn (see {@link DynamoLockProviderOptions.fenceMode}). */
  readonly fenceMode: FenceMode;
  readonly #ownsClient: boolean;
  readonly #requester: Requester;
  readonly #lockTable: LockTable;
  readonly #observations = new ObservationBook();
  readonly #placeObservations = new ObservationBook();
  readonly #knownKeys = new KnownKeys();
  readonly #defaults: { ttlMs: number; lockDelayMs: number };
  readonly #options: DynamoLockProviderOptions;
  readonly #sessions = new Set<DynamoLockSession>();
  #tableChecked: Promise<void> | undefined;
  #marked: Promise<void> | undefined;
  #closed = false;

  constructor(options: DynamoLockProviderOptions = {}) {
    this.#options = options;
    this.clock = options.clock ?? systemClock;
    this.table = options.table ?? DEFAULT_TABLE;
    this.partitionKey = options.partitionKey ?? DEFAULT_PARTITION_KEY;
    this.fenceMode = options.fenceMode ?? DEFAULT_FENCE_MODE;
    if (this.fenceMode !== 'counter' && this.fenceMode !== 'epoch') {
      throw new InvalidArgumentError(`fenceMode must be 'counter' or 'epoch', got ${String(this.fenceMode)}`);
    }
    this.#defaults = {
      ttlMs: checkDuration('ttlMs', options.ttlMs ?? 20_000, dynamoDurationBounds.ttlMs),
      lockDelayMs: checkDuration('lockDelayMs', options.lockDelayMs ?? 0, dynamoDurationBounds.lockDelayMs),
    };
    for (const name of ['heartbeatIntervalMs', 'takeoverMarginMs', 'requestTimeoutMs'] as const) {
      const value = options[name];
      if (value !== undefined) checkDuration(name, value, dynamoDurationBounds[name]);
    }
    this.#ownsClient = !options.client;
    this.client =
      options.client ??
      new DynamoDBClient({
        maxAttempts: 1,
        ...(options.endpoint ? { endpoint: options.endpoint } : {}),
        ...(options.region
          ? { region: options.region }
          : isLocalEndpoint(options.endpoint)
            ? { region: 'local' }
            : {}),
        ...(options.credentials ? { credentials: options.credentials } : {}),
      });
    this.#requester = new Requester({
      clock: this.clock,
      table: this.table,
      partitionKey: this.partitionKey,
      requestTimeoutMs: options.requestTimeoutMs ?? 5_000,
      defaultBudgetMs: this.#defaults.ttlMs,
    });
    this.#lockTable = new LockTable(
      this.client,
      this.#requester,
      this.table,
      this.partitionKey,
      this.fenceMode,
      () => this.clock.wallNow(),
    );
  }

  /**
   * Opens a session after one read that proves the table is reachable (typed errors otherwise: missing
   * table, permissions, transport); the provider's first session also checks that the table is not a global
   * table (see {@link DynamoLockProviderOptions.allowGlobalTable}). The session's heartbeat starts at once.
   */
  async openSession(options: SessionOptions = {}): Promise<DynamoLockSession> {
    this.#assertOpen();
    const ttlMs = checkDuration('ttlMs', options.ttlMs ?? this.#defaults.ttlMs, dynamoDurationBounds.ttlMs);
    const lockDelayMs = checkDuration(
      'lockDelayMs',
      options.lockDelayMs ?? this.#defaults.lockDelayMs,
      dynamoDurationBounds.lockDelayMs,
    );
    const configured = this.#options.heartbeatIntervalMs;
    const intervalMs = configured === undefined ? ttlMs / 3 : Math.min(configured, ttlMs / 2);
    const startedAt = this.clock.monotonicNow();
    await whileHolding(() => this.#checkTable(startedAt + ttlMs));
    await whileHolding(() => this.#checkMode(startedAt + ttlMs));
    this.#assertOpen();
    const session = new DynamoLockSession(
      {
        table: this.#lockTable,
        clock: this.clock,
        observations: this.#observations,
        placeObservations: this.#placeObservations,
        knownKeys: this.#knownKeys,
        expiryWaitMs: (record) => this.#expiryWaitMs(record),
        placeExpiryMs: (leaseMs) => this.#expiryAfterMs(leaseMs),
        watch: (key, watchOptions) => this.watch(key, watchOptions),
        heartbeatConcurrency: this.#options.heartbeatConcurrency ?? 16,
      },
      { id: randomUUID(), name: options.name, ttlMs, lockDelayMs, intervalMs, startedAt },
    );
    this.#sessions.add(session);
    session.signal.addEventListener('abort', () => this.#sessions.delete(session), { once: true });
    return session;
  }

  /**
   * The current holder of `key` (one consistent GetItem), or `null`. A holder whose record this provider has
   * seen unchanged for its lease duration plus margin is reported as gone: it has stopped renewing and no
   * longer trusts its lease, even though nobody has taken the key over yet.
   */
  async getHolder(key: string, options: { signal?: AbortSignal } = {}): Promise<LockHolder | null> {
    validateKey(key);
    this.#assertOpen();
    const record = await whileHolding(() => this.#lockTable.read(key, { signal: options.signal }));
    return this.#holderOf(key, record, this.clock.monotonicNow());
  }

  /** Polls {@link DynamoLockProvider.getHolder} (default every second, jittered) and yields changes. */
  watch(key: string, options: WatchOptions = {}): AsyncIterable<LockHolder | null> {
    validateKey(key);
    return pollingWatch((signal) => this.getHolder(key, signal ? { signal } : {}), {
      signal: options.signal,
      pollIntervalMs: options.pollIntervalMs ?? Math.min(1_000, this.#defaults.ttlMs / 2),
      clock: this.clock,
    });
  }

  /**
   * Held locks whose key starts with `prefix`. A consistent Scan with a filter: it reads (and is billed for)
   * the whole table, so keep it to operator tools, not hot paths.
   */
  async list(prefix = ''): Promise<LockHolder[]> {
    this.#assertOpen();
    const records = await whileHolding(() => this.#lockTable.scanHeld(prefix));
    const seenAt = this.clock.monotonicNow();
    const holders: LockHolder[] = [];
    for (const record of records) {
      const holder = this.#holderOf(record.key, record, seenAt);
      if (holder) holders.push(holder);
    }
    return holders.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /**
   * Clears the holder of `key` whoever it is (one conditional UpdateItem). The holder learns it at its next
   * heartbeat. The fence is kept, so the next holder's fence is higher. `false` when nobody held the key.
   */
  async forceRelease(key: string): Promise<boolean> {
    validateKey(key);
    this.#assertOpen();
    return whileHolding(() => this.#lockTable.forceRelease(key, randomUUID()));
  }

  /**
   * Creates the lock table (on-demand billing, string partition key) unless it exists, and waits until it
   * is ACTIVE (within `timeoutMs`: default 5 min, from 1 ms to 24 h). Needs dynamodb:DescribeTable and
   * dynamodb:CreateTable.
   */
  ensureTable(options: { timeoutMs?: number } = {}): Promise<EnsureTableResult> {
    this.#assertOpen();
    if (options.timeoutMs !== undefined) {
      checkDuration('ensureTable: timeoutMs', options.timeoutMs, dynamoDurationBounds.ensureTableTimeoutMs);
    }
    return whileHolding(() =>
      ensureLockTable({
        client: this.client,
        requester: this.#requester,
        clock: this.clock,
        table: this.table,
        partitionKey: this.partitionKey,
        ...options,
      }),
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#sessions].map((session) => session.destroy()));
    if (this.#ownsClient) this.client.destroy();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #holderOf(key: string, record: LockRecord | null, seenAt: number): LockHolder | null {
    if (record) this.#knownKeys.add(key);
    else this.#knownKeys.forget(key);
    if (!record || record.owner === undefined) {
      if (!record || record.holdMs === 0) this.#observations.forget(key);
      return null;
    }
    if (this.#observations.observe(key, record.rvn, seenAt) >= this.#expiryWaitMs(record)) return null;
    return { key, sessionId: record.owner, fence: record.fence, value: record.value };
  }

  #expiryWaitMs(record: LockRecord): number {
    return this.#expiryAfterMs(record.leaseMs);
  }

  /** A lease duration plus the takeover margin: how long an advertised version must stay unchanged. */
  #expiryAfterMs(leaseMs: number): number {
    return leaseMs + (this.#options.takeoverMarginMs ?? Math.ceil(leaseMs / 10));
  }

  /**
   * Proves the table reachable (one request) and keeps the fence modes from mixing: an `epoch`-mode provider
   * marks the table (its first session; later ones read) before it can delete any lock item; a `counter`-mode
   * provider reads the mark (one consistent GetItem per session) and refuses a marked table, on which it
   * would restart the fences of every deleted key at 1.
   */
  async #checkMode(deadline: number): Promise<void> {
    if (this.fenceMode === 'epoch') {
      if (this.#marked) {
        await this.#marked;
        await this.#lockTable.probe({ deadline });
        return;
      }
      this.#marked = this.#lockTable.markDeleting({ deadline }).catch((error: unknown) => {
        this.#marked = undefined;
        throw error;
      });
      await this.#marked;
      return;
    }
    const mode = await this.#lockTable.probe({ deadline }, true);
    if (mode === 'epoch') {
      throw new ConfigError(
        FENCE_MODE_FIELD,
        `DynamoDB table '${this.table}' is used in fence mode epoch, which deletes released lock items: in ` +
          'counter mode a deleted key would restart its fences at 1, below fences already handed out. Fix: set ' +
          `${FENCE_MODE_FIELD}=epoch on every worker of this table, or give counter mode a table of its own.`,
        { backend: BACKEND },
      );
    }
  }

  /** Refuses a global table, once per provider (again after a failed check). */
  #checkTable(deadline: number): Promise<void> {
    if (this.#options.allowGlobalTable) return Promise.resolve();
    this.#tableChecked ??= refuseGlobalTable({
      client: this.client,
      requester: this.#requester,
      table: this.table,
      limits: { deadline },
    }).catch((error: unknown) => {
      this.#tableChecked = undefined;
      throw error;
    });
    return this.#tableChecked;
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError('DynamoDB lock provider is closed');
  }
}
