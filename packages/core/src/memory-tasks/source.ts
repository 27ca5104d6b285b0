import { type Clock, systemClock } from '../clock.js';
import { ClosedError, InvalidArgumentError, throwIfAborted, UnavailableError } from '../errors.js';
import type {
  ClaimResult,
  CompleteResult,
  DueOptions,
  DueTask,
  FailResult,
  NewTask,
  Task,
  TaskFailure,
  TaskSource,
  TaskStatus,
} from '../task-source.js';
import { checkFence, jsonText } from '../task-source-helpers.js';

/** The operations of a {@link MemoryTaskSource}, as named by its fault injection. */
export type TaskSourceOperation = 'enqueue' | 'due' | 'claim' | 'complete' | 'fail' | 'get';

/** Options for {@link MemoryTaskSource}. */
export interface MemoryTaskSourceOptions {
  /** The "database" clock: `runAt`, `createdAt`, backoff and reclaim use its wall time. */
  clock?: Clock;
  /** `maxAttempts` of tasks enqueued without one. Default 5. */
  defaultMaxAttempts?: number;
  /**
   * `due()` lists a `running` task again once its claim is this old (its worker may be gone). Safety never
   * depends on it (a claim needs a newer fence); it keeps workers from trying tasks others still run. Keep it
   * above the handler timeout. Default 30 000.
   */
  reclaimAfterMs?: number;
  /**
   * Delay before a failed task is due again, given its attempts so far. Default: 1 s doubled per attempt,
   * capped at 1 h.
   */
  retryDelayMs?: (attempts: number) => number;
  /** Page size of `due()` when the caller gives none. Default 100. */
  pageSize?: number;
}

/** How an injected fault behaves: fail before the operation, or apply a write and then fail (lost reply). */
export interface InjectedFault {
  /** Operations that fail; all when omitted. */
  operations?: readonly TaskSourceOperation[];
  /** `before` (default): nothing happens. `after`: a write is applied, then the call rejects anyway. */
  when?: 'before' | 'after';
}

interface Row {
  readonly seq: number;
  readonly id: string;
  readonly kind: string;
  readonly payloadJson: string;
  status: TaskStatus;
  attempts: number;
  readonly maxAttempts: number;
  runAt: number;
  readonly createdAt: number;
  fence: number | null;
  workerId: string | null;
  resultJson: string;
  lastError: string | null;
  claimedAt: number | null;
}

interface PendingFault {
  remaining: number;
  operations: ReadonlySet<TaskSourceOperation> | undefined;
  when: 'before' | 'after';
}

const DEFAULT_PAGE_SIZE = 100;

/**
 * The in-process reference {@link TaskSource}: the same fenced semantics as the PostgreSQL source, kept in
 * memory. Payloads and results go through JSON as they would through a `jsonb` column, so a handler sees the
 * same shapes in tests as in production.
 *
 * Order is enqueue order. `due({ start })` maps `start` onto the span of currently due tasks, walks to the
 * end, then wraps around to just before the start, page by page; each page is read fresh, so a task finished
 * by someone else meanwhile is not listed.
 */
export class MemoryTaskSource implements TaskSource {
  readonly clock: Clock;
  readonly reclaimAfterMs: number;
  readonly #defaultMaxAttempts: number;
  readonly #retryDelayMs: (attempts: number) => number;
  readonly #pageSize: number;
  readonly #rows: Row[] = [];
  readonly #byId = new Map<string, Row>();
  readonly #faults: PendingFault[] = [];
  #nextAutoId = 0;
  #closed = false;

  constructor(options: MemoryTaskSourceOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.reclaimAfterMs = nonNegative('reclaimAfterMs', options.reclaimAfterMs ?? 30_000);
    this.#defaultMaxAttempts = positiveInt('defaultMaxAttempts', options.defaultMaxAttempts ?? 5);
    this.#pageSize = positiveInt('pageSize', options.pageSize ?? DEFAULT_PAGE_SIZE);
    this.#retryDelayMs =
      options.retryDelayMs ?? ((attempts) => Math.min(3_600_000, 1_000 * 2 ** Math.max(0, attempts - 1)));
  }

  /**
   * Makes the next `count` matching operations reject with an `UNAVAILABLE` error, as a dropped database
   * connection would. Each page of `due()` counts as one `due` operation.
   */
  failNext(count = 1, fault: InjectedFault = {}): void {
    this.#faults.push({
      remaining: count,
      operations: fault.operations ? new Set(fault.operations) : undefined,
      when: fault.when ?? 'before',
    });
  }

  async enqueue<P>(tasks: NewTask<P> | readonly NewTask<P>[]): Promise<string[]> {
    this.#assertOpen();
    const list: readonly NewTask<P>[] = Array.isArray(tasks) ? tasks : [tasks as NewTask<P>];
    const prepared = list.map((task, index) => this.#prepare(task, index));
    this.#fault('enqueue', 'before');
    const ids: string[] = [];
    for (const task of prepared) {
      const id = task.id ?? this.#autoId();
      if (!this.#byId.has(id)) {
        const row: Row = {
          seq: this.#rows.length,
          id,
          kind: task.kind,
          payloadJson: task.payloadJson,
          status: 'pending',
          attempts: 0,
          maxAttempts: task.maxAttempts,
          runAt: task.runAt,
          createdAt: this.clock.wallNow(),
          fence: null,
          workerId: null,
          resultJson: 'null',
          lastError: null,
          claimedAt: null,
        };
        this.#rows.push(row);
        this.#byId.set(id, row);
      }
      ids.push(id);
    }
    this.#fault('enqueue', 'after');
    return ids;
  }

  async *due(options: DueOptions = {}): AsyncGenerator<DueTask> {
    const start = options.start ?? 0;
    if (!(start >= 0 && start < 1)) {
      throw new InvalidArgumentError(`due(): start must be a fraction in [0, 1), got ${start}`);
    }
    const pageSize = positiveInt('pageSize', options.pageSize ?? this.#pageSize);
    const kinds = options.kinds ? new Set(options.kinds) : undefined;
    const { signal } = options;

    const first = await this.#dueSpan(kinds, signal);
    if (!first) return;
    const startSeq = first.lo + Math.floor(start * (first.hi - first.lo + 1));
    const segments: Array<[from: number, to: number]> = [
      [startSeq, Number.POSITIVE_INFINITY],
      [0, startSeq],
    ];
    for (const [from, to] of segments) {
      let cursor = from;
      for (;;) {
        const page = await this.#page(cursor, to, pageSize, kinds, signal);
        if (page.length === 0) break;
        for (const row of page) yield { ...snapshot(row), dueKey: dueKey(row.seq) };
        cursor = page[page.length - 1]!.seq + 1;
      }
    }
  }

  async claim(taskId: string, fence: number, workerId: string): Promise<ClaimResult> {
    this.#assertOpen();
    checkFence(fence);
    this.#fault('claim', 'before');
    const row = this.#byId.get(taskId);
    let result: ClaimResult;
    if (!row) result = { claimed: false, reason: 'missing' };
    else if (row.fence !== null && row.fence >= fence) result = { claimed: false, reason: 'stale' };
    else if (!this.#isClaimable(row, this.clock.wallNow()))
      result = { claimed: false, reason: 'not-runnable' };
    else if (row.status === 'running' && row.attempts >= row.maxAttempts) {
      // Its worker died during the final attempt: bury it under the new fence rather than run it again.
      row.status = 'dead';
      row.fence = fence;
      row.workerId = workerId;
      row.claimedAt = null;
      row.lastError = `abandoned: no outcome was reported for attempt ${row.attempts} of ${row.maxAttempts} before the task was claimed again`;
      result = { claimed: false, reason: 'not-runnable' };
    } else {
      row.status = 'running';
      row.fence = fence;
      row.workerId = workerId;
      row.attempts++;
      row.claimedAt = this.clock.wallNow();
      result = { claimed: true, task: snapshot(row) };
    }
    this.#fault('claim', 'after');
    return result;
  }

  async complete(taskId: string, fence: number, result?: unknown): Promise<CompleteResult> {
    this.#assertOpen();
    checkFence(fence);
    const resultJson = jsonText(result ?? null, 'result');
    this.#fault('complete', 'before');
    const row = this.#owned(taskId, fence);
    let outcome: CompleteResult = { applied: false, reason: 'stale' };
    if (row) {
      row.status = 'done';
      row.resultJson = resultJson;
      row.claimedAt = null;
      outcome = { applied: true };
    }
    this.#fault('complete', 'after');
    return outcome;
  }

  async fail(taskId: string, fence: number, failure: TaskFailure): Promise<FailResult> {
    this.#assertOpen();
    checkFence(fence);
    if (typeof failure?.message !== 'string') {
      throw new InvalidArgumentError('fail(): failure.message must be a string');
    }
    this.#fault('fail', 'before');
    const row = this.#owned(taskId, fence);
    let outcome: FailResult = { applied: false, reason: 'stale' };
    if (row) {
      row.lastError = failure.message;
      row.claimedAt = null;
      if (failure.retryable !== false && row.attempts < row.maxAttempts) {
        const now = this.clock.wallNow();
        row.status = 'failed';
        row.runAt = now + Math.max(0, this.#retryDelayMs(row.attempts));
        outcome = { applied: true, status: 'failed', nextRunAt: new Date(row.runAt) };
      } else {
        row.status = 'dead';
        outcome = { applied: true, status: 'dead' };
      }
    }
    this.#fault('fail', 'after');
    return outcome;
  }

  async get(taskId: string): Promise<Task | null> {
    this.#assertOpen();
    this.#fault('get', 'before');
    const row = this.#byId.get(taskId);
    return row ? snapshot(row) : null;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  /** Every task, in enqueue order (a test and demo helper; not part of the contract). */
  tasks(): Task[] {
    return this.#rows.map(snapshot);
  }

  /** Number of tasks per status. */
  counts(): Record<TaskStatus, number> {
    const counts: Record<TaskStatus, number> = { pending: 0, running: 0, done: 0, failed: 0, dead: 0 };
    for (const row of this.#rows) counts[row.status]++;
    return counts;
  }

  /** Number of tasks stored. */
  get size(): number {
    return this.#rows.length;
  }

  /**
   * A newer fence may take a `running` task over at any time: holding a newer lock proves the previous
   * holder's lease ended. `reclaimAfterMs` only decides when `due()` lists it again.
   */
  #isClaimable(row: Row, now: number): boolean {
    if (row.status === 'pending' || row.status === 'failed' || row.status === 'running')
      return row.runAt <= now;
    return false;
  }

  #isDue(row: Row, now: number): boolean {
    if (row.status === 'pending' || row.status === 'failed') return row.runAt <= now;
    if (row.status === 'running') return row.claimedAt !== null && row.claimedAt + this.reclaimAfterMs <= now;
    return false;
  }

  #owned(taskId: string, fence: number): Row | undefined {
    const row = this.#byId.get(taskId);
    return row && row.status === 'running' && row.fence === fence ? row : undefined;
  }

  /** The lowest and highest sequence numbers among due tasks (one cheap query in SQL). */
  async #dueSpan(
    kinds: ReadonlySet<string> | undefined,
    signal: AbortSignal | undefined,
  ): Promise<{ lo: number; hi: number } | undefined> {
    this.#assertOpen();
    throwIfAborted(signal, 'due()');
    this.#fault('due', 'before');
    const now = this.clock.wallNow();
    let lo = -1;
    let hi = -1;
    for (const row of this.#rows) {
      if (kinds && !kinds.has(row.kind)) continue;
      if (!this.#isDue(row, now)) continue;
      if (lo < 0) lo = row.seq;
      hi = row.seq;
    }
    return lo < 0 ? undefined : { lo, hi };
  }

  async #page(
    from: number,
    to: number,
    pageSize: number,
    kinds: ReadonlySet<string> | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Row[]> {
    this.#assertOpen();
    throwIfAborted(signal, 'due()');
    this.#fault('due', 'before');
    const now = this.clock.wallNow();
    const page: Row[] = [];
    const end = Math.min(to, this.#rows.length);
    for (let seq = from; seq < end && page.length < pageSize; seq++) {
      const row = this.#rows[seq]!;
      if (kinds && !kinds.has(row.kind)) continue;
      if (this.#isDue(row, now)) page.push(row);
    }
    return page;
  }

  #prepare<P>(
    task: NewTask<P>,
    index: number,
  ): { id: string | undefined; kind: string; payloadJson: string; runAt: number; maxAttempts: number } {
    const where = `enqueue(): task #${index}`;
    if (typeof task?.kind !== 'string' || task.kind.length === 0) {
      throw new InvalidArgumentError(`${where}: kind must be a non-empty string`);
    }
    if (task.id !== undefined && (typeof task.id !== 'string' || task.id.length === 0)) {
      throw new InvalidArgumentError(`${where}: id must be a non-empty string when given`);
    }
    const maxAttempts = task.maxAttempts ?? this.#defaultMaxAttempts;
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
      throw new InvalidArgumentError(`${where}: maxAttempts must be a whole number >= 1, got ${maxAttempts}`);
    }
    let runAt = this.clock.wallNow();
    if (task.runAt !== undefined) {
      if (!(task.runAt instanceof Date) || Number.isNaN(task.runAt.getTime())) {
        throw new InvalidArgumentError(`${where}: runAt must be a valid Date`);
      }
      runAt = task.runAt.getTime();
    }
    return {
      id: task.id,
      kind: task.kind,
      payloadJson: jsonText(task.payload ?? null, `${where}: payload`),
      runAt,
      maxAttempts,
    };
  }

  #autoId(): string {
    let id: string;
    do id = String(++this.#nextAutoId);
    while (this.#byId.has(id));
    return id;
  }

  #fault(operation: TaskSourceOperation, when: 'before' | 'after'): void {
    const index = this.#faults.findIndex(
      (f) => f.remaining > 0 && (!f.operations || f.operations.has(operation)),
    );
    const fault = this.#faults[index];
    if (!fault) return;
    // A read has nothing to apply: an `after` fault on it fails like a `before` one.
    const isWrite = operation !== 'due' && operation !== 'get';
    const effective = isWrite ? fault.when : 'before';
    if (effective !== when) return;
    fault.remaining--;
    if (fault.remaining === 0) this.#faults.splice(index, 1);
    throw new UnavailableError(`memory task source: injected failure during ${operation}`, {
      cause: new Error('ECONNRESET (injected)'),
    });
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError('memory task source is closed');
  }
}

/** Enqueue order as a fixed-width decimal string, so string order is numeric order. */
function dueKey(seq: number): string {
  return seq.toString().padStart(16, '0');
}

function snapshot(row: Row): Task {
  return Object.freeze({
    id: row.id,
    kind: row.kind,
    payload: JSON.parse(row.payloadJson) as unknown,
    status: row.status,
    attempts: row.attempts,
    maxAttempts: row.maxAttempts,
    runAt: new Date(row.runAt),
    createdAt: new Date(row.createdAt),
    fence: row.fence,
    workerId: row.workerId,
    result: JSON.parse(row.resultJson) as unknown,
    lastError: row.lastError,
  });
}

function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new InvalidArgumentError(`${name} must be a whole number >= 1, got ${value}`);
  }
  return value;
}

function nonNegative(name: string, value: number): number {
  if (!(value >= 0)) throw new InvalidArgumentError(`${name} must be >= 0, got ${value}`);
  return value;
}
