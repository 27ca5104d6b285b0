import {
  BatonError,
  type Clock,
  finalReleaseDelay,
  sessionRetryDelay,
  sleep,
  type TimerHandle,
} from '@baton/core';

/**
 * A key this session may still hold at Consul without a live lease: an acquisition in flight, a release
 * deferred by `lockAtLeastForMs`, or an acquisition/release whose outcome is unknown after a transport
 * failure. While a key is pending this session never takes it again (Consul would let the same session
 * re-lock it and hand out a stale fence); the pending release runs later, or before the next acquisition.
 */
export interface PendingKey {
  /** `taken`: acquired by a waiting line, until the session hands the lease to the caller. */
  kind: 'acquiring' | 'taken' | 'deferred' | 'unsettled';
  consulKey: string;
  value: string | undefined;
  flags: number;
  dueAt: number;
  timer: TimerHandle | undefined;
  running: Promise<void> | undefined;
  failures: number;
}

/** What {@link PendingReleases} needs from its session. */
export interface PendingReleasesInit {
  clock: Clock;
  ttlMs: number;
  /** The session's signal: background work stops when it aborts. */
  signal: AbortSignal;
  /** True once the session was abandoned (crash hook): nothing more is sent. */
  abandoned: () => boolean;
  /** Deletes the key while this session still holds it; `false` when it no longer did. */
  release: (pending: PendingKey) => Promise<boolean>;
  report: (error: unknown, context: string) => void;
}

/** The pending keys of one Consul session, and the releases that settle them (see {@link PendingKey}). */
export class PendingReleases {
  readonly #init: PendingReleasesInit;
  readonly #keys = new Map<string, PendingKey>();

  constructor(init: PendingReleasesInit) {
    this.#init = init;
  }

  get(key: string): PendingKey | undefined {
    return this.#keys.get(key);
  }

  has(key: string): boolean {
    return this.#keys.has(key);
  }

  /** Marks `key` pending. */
  add(
    key: string,
    kind: PendingKey['kind'],
    fields: { consulKey: string; value: string | undefined; flags?: number; dueAt?: number },
  ): PendingKey {
    const pending: PendingKey = {
      kind,
      consulKey: fields.consulKey,
      value: fields.value,
      flags: fields.flags ?? 0,
      dueAt: fields.dueAt ?? 0,
      timer: undefined,
      running: undefined,
      failures: 0,
    };
    this.#keys.set(key, pending);
    return pending;
  }

  delete(key: string): void {
    this.#keys.delete(key);
  }

  /** Runs the release of `key` at `pending.dueAt` (a `lockAtLeastFor` window). */
  deferUntilDue(key: string, pending: PendingKey): void {
    pending.timer = this.#init.clock.setTimeout(
      () => this.#run(key, pending),
      pending.dueAt - this.#init.clock.monotonicNow(),
    );
  }

  /** One attempt at the pending release of `key`; concurrent callers share it. Rejects if it failed. */
  settle(key: string, pending: PendingKey): Promise<void> {
    pending.running ??= (async () => {
      try {
        await this.#init.release(pending);
        if (pending.timer !== undefined) this.#init.clock.clearTimeout(pending.timer);
        if (this.#keys.get(key) === pending) this.#keys.delete(key);
      } finally {
        pending.running = undefined;
      }
    })();
    return pending.running;
  }

  /**
   * Retries a pending release in the background with jittered backoff. Failures that retrying cannot fix
   * (a 403) stay pending: the next acquisition of the key, or the session's end, tries once more.
   */
  retryLater(key: string, pending: PendingKey, error: unknown): void {
    if (this.#stopped() || this.#keys.get(key) !== pending) return;
    if (error instanceof BatonError && !error.retryable) return;
    const delay = sessionRetryDelay(pending.failures++, this.#init.ttlMs);
    if (pending.timer !== undefined) this.#init.clock.clearTimeout(pending.timer);
    pending.timer = this.#init.clock.setTimeout(() => this.#run(key, pending), delay);
  }

  /**
   * Before the session ends: wait out lockAtLeastFor windows, then settle every pending release, retrying
   * for up to a TTL each.
   */
  async flush(): Promise<void> {
    const { clock, signal, ttlMs } = this.#init;
    const flush = async (key: string, pending: PendingKey): Promise<void> => {
      if (pending.timer !== undefined) clock.clearTimeout(pending.timer);
      pending.timer = undefined;
      const wait = pending.kind === 'deferred' ? pending.dueAt - clock.monotonicNow() : 0;
      if (wait > 0) await sleep(wait, { signal, clock });
      const giveUpAt = clock.monotonicNow() + ttlMs;
      for (let attempt = 0; this.#keys.get(key) === pending && !signal.aborted; attempt++) {
        try {
          await this.settle(key, pending);
          return;
        } catch (error) {
          this.#init.report(error, `release '${key}'`);
          if (clock.monotonicNow() >= giveUpAt) return;
          await sleep(finalReleaseDelay(attempt, ttlMs), { signal, clock });
        }
      }
    };
    await Promise.allSettled([...this.#keys].map(([key, pending]) => flush(key, pending)));
  }

  /** Stops every timer; a lost or abandoned session also forgets its pending keys. */
  stop(): void {
    for (const pending of this.#keys.values()) {
      if (pending.timer !== undefined) this.#init.clock.clearTimeout(pending.timer);
      pending.timer = undefined;
    }
    if (this.#stopped()) this.#keys.clear();
  }

  #stopped(): boolean {
    return this.#init.abandoned() || this.#init.signal.aborted;
  }

  #run(key: string, pending: PendingKey): void {
    pending.timer = undefined;
    if (this.#keys.get(key) !== pending || this.#stopped()) return;
    this.settle(key, pending).catch((error: unknown) => {
      this.#init.report(error, `release '${key}'`);
      pending.kind = 'unsettled';
      this.retryLater(key, pending, error);
    });
  }
}
