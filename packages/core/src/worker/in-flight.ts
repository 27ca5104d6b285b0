/** What a worker runs right now, as {@link Worker.running} reports it. */
export interface RunningTask {
  readonly taskId: string;
  readonly kind: string;
  /** The task's fence: the task lock's fence (task mode) or the claim token (bucket mode). */
  readonly fence: number;
  /** The lock key the task runs under: `task/<id>`, or its bucket's key. */
  readonly lockKey: string;
  /** Bucket mode: the bucket the task was claimed from. */
  readonly bucket: number | undefined;
  /** How long ago its handler started, on the worker's monotonic clock. */
  readonly runningMs: number;
}

/** What a tracked task is, for {@link InFlightTasks.running}. */
export interface RunningInfo {
  readonly kind: string;
  readonly fence: number;
  readonly lockKey: string;
  /** The worker's monotonic time when the handler started. */
  readonly startedAt: number;
}

/** One task whose handler runs (or whose outcome is being written). */
interface Entry {
  readonly info: RunningInfo | undefined;
  /** Aborts the handler's signal with `reason` (the first reason wins). */
  readonly abort: (reason: unknown) => void;
  /** Settles when the outcome is written (or given up on) and the task's lease, if any, released. */
  readonly done: Promise<void>;
  /** Bucket mode: the bucket the task was claimed from. */
  readonly bucket: number | undefined;
}

/** The tasks a worker runs right now, by id: what a stop waits for and what a lost lease aborts. */
export class InFlightTasks {
  readonly #entries = new Map<string, Entry>();

  get size(): number {
    return this.#entries.size;
  }

  has(taskId: string): boolean {
    return this.#entries.has(taskId);
  }

  /** Tracks `done` under `taskId` until it settles. `done` must never reject. */
  track(
    taskId: string,
    abort: (reason: unknown) => void,
    done: Promise<void>,
    bucket?: number,
    info?: RunningInfo,
  ): void {
    const entry: Entry = { abort, done, bucket, info };
    this.#entries.set(taskId, entry);
    void done.finally(() => {
      if (this.#entries.get(taskId) === entry) this.#entries.delete(taskId);
    });
  }

  /** The tracked tasks, with how long each has run at `now` (monotonic). */
  running(now: number): RunningTask[] {
    const list: RunningTask[] = [];
    for (const [taskId, { info, bucket }] of this.#entries) {
      if (!info) continue;
      const { kind, fence, lockKey, startedAt } = info;
      list.push({ taskId, kind, fence, lockKey, bucket, runningMs: Math.max(0, now - startedAt) });
    }
    return list;
  }

  /** Aborts every running handler (or those of one bucket). */
  abort(reason: unknown, bucket?: number): void {
    for (const entry of this.#entries.values()) {
      if (bucket === undefined || entry.bucket === bucket) entry.abort(reason);
    }
  }

  /** Tasks of one bucket that are running. */
  countIn(bucket: number): number {
    let count = 0;
    for (const entry of this.#entries.values()) if (entry.bucket === bucket) count++;
    return count;
  }

  /** Resolves once nothing runs (or nothing of `bucket`), including tasks started while waiting. */
  async drain(bucket?: number): Promise<void> {
    for (;;) {
      const pending = [...this.#entries.values()].filter((e) => bucket === undefined || e.bucket === bucket);
      if (pending.length === 0) return;
      await Promise.all(pending.map((entry) => entry.done));
    }
  }
}
