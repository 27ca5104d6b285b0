import { type LockProvider, redact } from '@baton/core';
import type { PgPool, PgQueryable } from '@baton/source-postgres';
import { type LeaderRow, LocksReader, type LocksView } from './locks-view.js';
import type { ConsoleOptions } from './options.js';
import {
  type ConsoleQueries,
  type CountRow,
  firstRow,
  type MinuteRow,
  type TaskSummary,
  toCounts,
  toMinutes,
  toSummary,
} from './queries.js';
import { nextRefreshDelay } from './refresh-pace.js';
import { type RetentionSettings, readStorage, type StorageView } from './storage.js';
import { toWorkers, type WorkerRow } from './workers-view.js';

/** Everything a page shows that is not asked for: pushed to every open page after each refresh. */
export interface Snapshot {
  /** The database's clock when the snapshot was read (ms since the epoch). */
  at: number;
  /** Number of the refresh that produced it. */
  seq: number;
  readOnly: boolean;
  /** The configured refresh interval (`--refresh`). */
  refreshMs: number;
  /** How long reading this snapshot took (this machine's monotonic clock, ms). */
  readMs: number;
  /**
   * When the next refresh comes, in ms: `refreshMs`, or longer when reads are slow (a big table), so the loop
   * spends at most a tenth of the time reading ({@link nextRefreshDelay}).
   */
  nextRefreshMs: number;
  counts: {
    /** pending, running, failed: read on every refresh. */
    open: CountRow[];
    /** done, dead: recounted every `finishedCountMs` (and after an action). */
    finished: CountRow[];
    /** When the finished counts were read (the database's clock). */
    finishedAt: number;
  };
  /**
   * The tasks table's size and row estimate, and what the retention policy removes next: read with the
   * done/dead counts (every `finishedCountMs`, and after an action), at `counts.finishedAt`.
   */
  storage: StorageView;
  /** Tasks due now and not running (pending, or failed and due for their retry). */
  backlog: { due: number };
  /** The last hour, one row per minute that finished tasks (oldest first). */
  minutes: MinuteRow[];
  problems: { failed: TaskSummary[]; dead: TaskSummary[] };
  /**
   * Workers by their heartbeat (the workers table: alive, silent, stopped), merged with what each runs now
   * and finished in the last 5 minutes by the tasks table; workers without a heartbeat (older versions, or
   * heartbeat off) as the tasks table alone shows them (state `unknown`).
   */
  workers: WorkerRow[];
  locks: LocksView | null;
  leaders: LeaderRow[];
}

/** A refresh that failed: pushed to every open page in place of a snapshot, until a refresh succeeds. */
export interface RefreshFailure {
  /** What failed, without secrets (passed through core's `redact`). */
  message: string;
  /** When the refresh failed (this machine's clock, ms since the epoch). */
  at: number;
  /** Refreshes failed in a row. */
  failures: number;
  /** When the latest good snapshot was read (the database's clock), or null: none yet. */
  lastGoodAt: number | null;
}

interface Listener {
  snapshot: (snapshot: Snapshot) => void;
  failure?: ((failure: RefreshFailure) => void) | undefined;
}

/**
 * The one refresh loop of a console: while at least one page listens, it reads a snapshot every
 * `refreshMs` (longer when reads are slow: they take at most a tenth of the time, see
 * {@link nextRefreshDelay}) and hands the same object to every listener. Its database cost depends on the
 * refresh rate and the table's size, never on the number of open pages; with no page open it reads nothing.
 */
export class Refresher {
  readonly #db: PgPool;
  readonly #sql: ConsoleQueries;
  readonly #locks: LocksReader | undefined;
  readonly #options: ConsoleOptions;
  readonly #readOnly: boolean;
  readonly #listeners = new Set<Listener>();
  #latest: Snapshot | undefined;
  #latestAt = 0;
  #inFlight: Promise<Snapshot> | undefined;
  readonly #retention: RetentionSettings;
  #finished: { rows: CountRow[]; storage: StorageView; at: number; readAt: number } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #failure: RefreshFailure | undefined;
  #lastGoodAt: number | null = null;
  #nextDelayMs: number;
  #closed = false;
  /** Snapshots read so far (for tests and the benchmark). */
  refreshes = 0;

  constructor(options: {
    db: PgPool;
    sql: ConsoleQueries;
    locks: LockProvider | undefined;
    settings: ConsoleOptions;
    readOnly: boolean;
    retention?: RetentionSettings | undefined;
  }) {
    this.#retention = options.retention ?? {};
    this.#db = options.db;
    this.#sql = options.sql;
    this.#options = options.settings;
    this.#nextDelayMs = options.settings.refreshMs;
    this.#readOnly = options.readOnly;
    this.#locks = options.locks
      ? new LocksReader(options.locks, options.settings.lockPrefix, options.settings.elections)
      : undefined;
  }

  get listeners(): number {
    return this.#listeners.size;
  }

  /** The failure of the latest refresh, or undefined when it succeeded. */
  get failure(): RefreshFailure | undefined {
    return this.#failure;
  }

  /**
   * Adds a listener (an open page): `onSnapshot` after each good refresh, `onFailure` after each failed one.
   * The loop runs while there is one. Returns the removal.
   */
  subscribe(
    onSnapshot: (snapshot: Snapshot) => void,
    onFailure?: (failure: RefreshFailure) => void,
  ): () => void {
    const listener: Listener = { snapshot: onSnapshot, failure: onFailure };
    this.#listeners.add(listener);
    if (this.#listeners.size === 1) this.#schedule(0);
    else if (this.#failure) onFailure?.(this.#failure);
    else if (this.#latest) onSnapshot(this.#latest);
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.#stopTimer();
    };
  }

  /** The latest snapshot if younger than one refresh interval, else a fresh one (shared with concurrent callers). */
  current(): Promise<Snapshot> {
    if (this.#latest && Date.now() - this.#latestAt < this.#options.refreshMs)
      return Promise.resolve(this.#latest);
    return this.refresh();
  }

  /** Reads a snapshot now (joining one under way) and pushes it to the listeners. */
  refresh(): Promise<Snapshot> {
    this.#inFlight ??= this.#read()
      .catch((error: unknown) => {
        this.#fail(error);
        throw error;
      })
      .finally(() => {
        this.#inFlight = undefined;
      });
    return this.#inFlight;
  }

  /** After an action: the next refresh recounts the finished tasks too, and comes right away. */
  invalidate(): void {
    this.#finished = undefined;
    this.#latest = undefined;
    if (this.#listeners.size > 0) this.#schedule(0);
  }

  close(): void {
    this.#closed = true;
    this.#stopTimer();
    this.#listeners.clear();
  }

  #schedule(delay: number): void {
    this.#stopTimer();
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.refresh()
        .catch(() => {})
        .finally(() => {
          if (this.#listeners.size > 0 && !this.#timer) this.#schedule(this.#nextDelayMs);
        });
    }, delay);
    this.#timer.unref();
  }

  #fail(error: unknown): void {
    const failure: RefreshFailure = {
      message: describeFailure(error),
      at: Date.now(),
      failures: (this.#failure?.failures ?? 0) + 1,
      lastGoodAt: this.#latest?.at ?? this.#lastGoodAt,
    };
    this.#failure = failure;
    this.#latest = undefined;
    for (const listener of this.#listeners) listener.failure?.(failure);
  }

  #stopTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #read(): Promise<Snapshot> {
    const started = performance.now();
    const local = Date.now();
    const previous = this.#finished;
    const recount = !previous || local - previous.readAt >= this.#options.finishedCountMs;
    const read = await this.#consistently(async (db) => {
      const sql = this.#sql;
      return {
        nowRows: await db.query(sql.now),
        open: await db.query(sql.openCounts),
        finished: recount ? await db.query(sql.finishedCounts) : undefined,
        storage: recount ? await readStorage(db, sql.storage, sql.table, this.#retention) : undefined,
        minutes: await db.query(sql.minutes),
        failed: await db.query(sql.failed),
        dead: await db.query(sql.dead),
        beats: firstRow(await db.query(sql.workersTable)).present
          ? (await db.query(sql.workersBeats)).rows
          : [],
        running: await db.query(sql.workersRunning),
        recent: await db.query(sql.workersRecent),
      };
    });
    const { nowRows, open, minutes, failed, dead, beats, running, recent } = read;
    const at = Number(firstRow(nowRows).now);
    const finished =
      read.finished && read.storage
        ? { rows: toCounts(read.finished.rows), storage: read.storage, at, readAt: local }
        : previous!;
    // An action during this read (invalidate()) asks for a recount after it: keep that request.
    if (this.#finished === previous) this.#finished = finished;
    const due = (open.rows as Array<{ due: string }>).reduce((sum, row) => sum + Number(row.due), 0);
    const locks = this.#locks ? await this.#locks.locks() : null;
    const leaders = this.#locks ? await this.#locks.leaders() : [];
    const readMs = Math.round(performance.now() - started);
    this.#nextDelayMs = nextRefreshDelay(this.#options.refreshMs, readMs);
    const snapshot: Snapshot = {
      at,
      seq: ++this.refreshes,
      readOnly: this.#readOnly,
      refreshMs: this.#options.refreshMs,
      readMs,
      nextRefreshMs: this.#nextDelayMs,
      counts: { open: toCounts(open.rows), finished: finished.rows, finishedAt: finished.at },
      storage: finished.storage,
      backlog: { due },
      minutes: toMinutes(minutes.rows),
      problems: { failed: failed.rows.map(toSummary), dead: dead.rows.map(toSummary) },
      workers: toWorkers(beats, running.rows, recent.rows),
      locks,
      leaders,
    };
    this.#latest = snapshot;
    this.#latestAt = Date.now();
    this.#lastGoodAt = snapshot.at;
    this.#failure = undefined;
    for (const listener of this.#listeners) listener.snapshot(snapshot);
    return snapshot;
  }

  /**
   * Runs the snapshot's statements in one read-only REPEATABLE READ transaction: they all see the same
   * moment, so a task finishing meanwhile is counted once (open or finished), never twice or not at all.
   */
  async #consistently<T>(body: (db: PgQueryable) => Promise<T>): Promise<T> {
    const client = await this.#db.connect();
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const result = await body(client);
      await client.query('COMMIT');
      client.release();
      return result;
    } catch (error) {
      client.release(error instanceof Error ? error : true);
      throw error;
    }
  }
}

/**
 * What failed, for the page: the stage, the driver's message and code, with every credential masked by
 * core's `redact` (URL passwords, credential parameters, remembered secrets such as the configured password).
 */
export function describeFailure(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  const suffix = typeof code === 'string' && code !== '' && !message.includes(code) ? ` (${code})` : '';
  return redact(`reading the database failed: ${message || 'no message'}${suffix}`);
}
