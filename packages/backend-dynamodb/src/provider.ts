import { randomUUID } from 'node:crypto';
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import {
  AbstractLockProvider,
  type Clock,
  ConfigError,
  checkDuration,
  type LockCapabilities,
  type LockHolder,
  type LockWaiter,
  parseSettings,
  pollingWatch,
  type SessionSettings,
  type SettingsOptions,
  sessionBoundsOf,
  systemClock,
  type WatchOptions,
  whileHolding,
} from '@baton/core';
import type { z } from 'zod';
import { dynamoDurationBounds, dynamoSettingsSchema, isLocalEndpoint } from './config.js';
import { type EnsureTableResult, ensureLockTable } from './ensure-table.js';
import { BACKEND } from './errors.js';
import { refuseGlobalTable } from './global-table.js';
import { KnownKeys } from './known-keys.js';
import { ObservationBook } from './observations.js';
import type { FenceMode, LockRecord } from './record.js';
import { Requester } from './requester.js';
import { DynamoLockSession } from './session.js';
import { LockTable } from './table.js';

/**
 * Options for {@link DynamoLockProvider}: the settings of `dynamoSettingsSchema` (table, partition key,
 * lease duration, lock-delay, heartbeat, margins, timeouts, fence mode, global-table check), and:
 */
export interface DynamoLockProviderOptions extends SettingsOptions<typeof dynamoSettingsSchema> {
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
  /**
   * Clock for every timing decision (monotonic time only). `epoch` mode also reads its wall time, for one
   * thing: the `expiresAt` TTL attribute of kept items, which only DynamoDB's TTL deletion reads.
   */
  clock?: Clock | undefined;
  /**
   * The wall clock (ms since the epoch) read for the times stamped into items for operators: when a grant was
   * made (`acquired`, reported as a holder's `acquiredAt`) and when a waiter lined up. Never read for a
   * decision. Defaults to `clock.wallNow`.
   */
  stampClock?: (() => number) | undefined;
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
  holderTimes: true,
  waiters: true,
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
export class DynamoLockProvider extends AbstractLockProvider<DynamoLockSession> {
  readonly backend = 'dynamodb';
  readonly capabilities = capabilities;
  /** The SDK client (add middleware to it for metrics). */
  readonly client: DynamoDBClient;
  /** Lock table name. */
  readonly table: string;
  /** Partition key attribute. */
  readonly partitionKey: string;
  /** How fences are drawn (see `dynamoSettingsSchema`'s `fenceMode`). */
  readonly fenceMode: FenceMode;
  readonly #ownsClient: boolean;
  readonly #requester: Requester;
  readonly #lockTable: LockTable;
  readonly #observations = new ObservationBook();
  readonly #placeObservations = new ObservationBook();
  readonly #knownKeys = new KnownKeys();
  readonly #settings: z.output<typeof dynamoSettingsSchema>;
  #tableChecked: Promise<void> | undefined;
  #marked: Promise<void> | undefined;

  constructor(options: DynamoLockProviderOptions = {}) {
    const settings = parseSettings(dynamoSettingsSchema, options, 'DynamoDB');
    super({
      label: 'DynamoDB',
      clock: options.clock ?? systemClock,
      sessionDefaults: settings,
      sessionBounds: sessionBoundsOf(dynamoSettingsSchema),
    });
    this.#settings = settings;
    this.table = settings.table;
    this.partitionKey = settings.partitionKey;
    this.fenceMode = settings.fenceMode;
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
      requestTimeoutMs: settings.requestTimeoutMs,
      defaultBudgetMs: settings.ttlMs,
    });
    this.#lockTable = new LockTable(
      this.client,
      this.#requester,
      this.table,
      this.partitionKey,
      this.fenceMode,
      () => this.clock.wallNow(),
      options.stampClock ?? (() => this.clock.wallNow()),
    );
  }

  /**
   * Opens a session after one read that proves the table is reachable (typed errors otherwise: missing
   * table, permissions, transport); the provider's first session also checks that the table is not a global
   * table (see `allowGlobalTable`). The session's heartbeat starts at once.
   */
  protected async startSession(settings: SessionSettings): Promise<DynamoLockSession> {
    const { ttlMs, lockDelayMs, name, startedAt } = settings;
    const configured = this.#settings.heartbeatIntervalMs;
    const intervalMs = configured === undefined ? ttlMs / 3 : Math.min(configured, ttlMs / 2);
    await this.#checkTable(startedAt + ttlMs);
    await this.#checkMode(startedAt + ttlMs);
    this.assertOpen();
    return new DynamoLockSession(
      {
        table: this.#lockTable,
        clock: this.clock,
        observations: this.#observations,
        placeObservations: this.#placeObservations,
        knownKeys: this.#knownKeys,
        expiryWaitMs: (record) => this.#expiryWaitMs(record),
        placeExpiryMs: (leaseMs) => this.#expiryAfterMs(leaseMs),
        watch: (key, watchOptions) => this.watch(key, watchOptions),
        heartbeatConcurrency: this.#settings.heartbeatConcurrency,
      },
      { id: randomUUID(), name, ttlMs, lockDelayMs, intervalMs, startedAt },
    );
  }

  /**
   * The current holder of `key` (one consistent GetItem), or `null`. A holder whose record this provider has
   * seen unchanged for its lease duration plus margin is reported as gone: it has stopped renewing and no
   * longer trusts its lease, even though nobody has taken the key over yet.
   */
  protected async readHolder(key: string, signal: AbortSignal | undefined): Promise<LockHolder | null> {
    const record = await this.#lockTable.read(key, { signal });
    return this.#holderOf(key, record, this.clock.monotonicNow());
  }

  /** Polls {@link DynamoLockProvider.getHolder} (default every second, jittered) and yields changes. */
  protected watchKey(
    key: string,
    signal: AbortSignal,
    options: WatchOptions,
  ): AsyncIterable<LockHolder | null> {
    return pollingWatch((poll) => this.getHolder(key, poll ? { signal: poll } : {}), {
      signal,
      pollIntervalMs: options.pollIntervalMs ?? Math.min(1_000, this.sessionDefaults.ttlMs / 2),
      clock: this.clock,
    });
  }

  /**
   * Held locks whose key starts with `prefix`. A consistent Scan with a filter: it reads (and is billed for)
   * the whole table, so keep it to operator tools, not hot paths.
   */
  protected async listHolders(prefix: string): Promise<LockHolder[]> {
    const records = await this.#lockTable.scanHeld(prefix);
    const seenAt = this.clock.monotonicNow();
    const holders: LockHolder[] = [];
    for (const record of records) {
      const holder = this.#holderOf(record.key, record, seenAt);
      if (holder) holders.push(holder);
    }
    return holders;
  }

  /**
   * The line of waiters stored on the key's item (one consistent GetItem), in ticket order. Places whose
   * session stopped refreshing them are listed until a waiter behind them removes them.
   */
  waiters(key: string, options: { signal?: AbortSignal } = {}): Promise<LockWaiter[]> {
    return this.keyCall(key, async () => {
      const record = await this.#lockTable.read(key, { signal: options.signal });
      return (record?.waiters ?? []).map((waiter, i) => ({
        sessionId: waiter.sessionId,
        position: i + 1,
        ...(waiter.since === undefined ? {} : { since: waiter.since, sinceSource: 'holder' as const }),
      }));
    });
  }

  /**
   * Clears the holder of `key` whoever it is (one conditional UpdateItem). The holder learns it at its next
   * heartbeat. The fence is kept, so the next holder's fence is higher. `false` when nobody held the key.
   */
  protected forceReleaseKey(key: string): Promise<boolean> {
    return this.#lockTable.forceRelease(key, randomUUID());
  }

  /**
   * Creates the lock table (on-demand billing, string partition key) unless it exists, and waits until it
   * is ACTIVE (within `timeoutMs`: default 5 min, from 1 ms to 24 h). Needs dynamodb:DescribeTable and
   * dynamodb:CreateTable.
   */
  ensureTable(options: { timeoutMs?: number } = {}): Promise<EnsureTableResult> {
    this.assertOpen();
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

  protected override closeConnections(): void {
    if (this.#ownsClient) this.client.destroy();
  }

  #holderOf(key: string, record: LockRecord | null, seenAt: number): LockHolder | null {
    if (record) this.#knownKeys.add(key);
    else this.#knownKeys.forget(key);
    if (!record || record.owner === undefined) {
      if (!record || record.holdMs === 0) this.#observations.forget(key);
      return null;
    }
    const unchangedFor = this.#observations.observe(key, record.rvn, seenAt);
    const expiryWait = this.#expiryWaitMs(record);
    if (unchangedFor >= expiryWait) return null;
    return {
      key,
      sessionId: record.owner,
      fence: record.fence,
      value: record.value,
      ...(record.acquiredAt === undefined
        ? {}
        : { acquiredAt: record.acquiredAt, acquiredAtSource: 'holder' as const }),
      // DynamoDB keeps no time: the most this provider would wait before it may take the lease over.
      leaseRemainingAtMostMs: expiryWait - unchangedFor,
    };
  }

  #expiryWaitMs(record: LockRecord): number {
    return this.#expiryAfterMs(record.leaseMs);
  }

  /** A lease duration plus the takeover margin: how long an advertised version must stay unchanged. */
  #expiryAfterMs(leaseMs: number): number {
    return leaseMs + (this.#settings.takeoverMarginMs ?? Math.ceil(leaseMs / 10));
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
    if (this.#settings.allowGlobalTable) return Promise.resolve();
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
}
