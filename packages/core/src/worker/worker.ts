import { backoffDelay } from '../backoff.js';
import { sleep } from '../clock.js';
import { checkDuration } from '../duration-bounds.js';
import { runWhileLeader } from '../election/run-while-leader.js';
import {
  AbortedError,
  ClosedError,
  InvalidArgumentError,
  LeaseLostError,
  SessionLostError,
} from '../errors.js';
import { holdProcess } from '../hold-process.js';
import type { LockSession } from '../lock.js';
import { type Listener, TypedEmitter } from './emitter.js';
import {
  emptyStats,
  type PassSummary,
  type WorkerErrorPhase,
  type WorkerEvents,
  type WorkerStats,
} from './events.js';
import {
  type ResolvedWorkerOptions,
  resolveWorkerOptions,
  type WorkerOptions,
  workerDurationBounds,
} from './options.js';
import { runPass } from './pass.js';
import type { EventPayload, InFlight, WorkerRuntime } from './runtime.js';
import { Slots } from './slots.js';
import { onProcessSignals, type StopOptions } from './stop.js';

/**
 * A worker: makes passes over the source's due tasks on its schedule and runs each task it can take, so that
 * across any number of workers every task's outcome is applied exactly once. Per task:
 *
 * 1. `tryAcquire(lockKey(task))` on the worker's lock session; skip if someone holds it;
 * 2. `source.claim(id, lease.fence, workerId)`: fenced, refused if the task was finished or taken meanwhile;
 * 3. `handler({ task, fence, signal, workerId })`, `signal` aborting on lease loss, timeout or hard stop;
 * 4. `source.complete(id, fence, result)` or `source.fail(id, fence, error)`: fenced, a stale write changes
 *    nothing and is counted;
 * 5. release the lease.
 *
 * Source and lock errors never crash the worker: it reports them as `error` events, backs off and retries;
 * a lost lock session is replaced. Observe it through typed events ({@link WorkerEvents}) and `stats()`.
 */
export class Worker {
  /** The worker id (claims record it; it names the lock session). */
  readonly id: string;
  readonly #options: ResolvedWorkerOptions;
  readonly #events: TypedEmitter<WorkerEvents>;
  readonly #stats = emptyStats();
  readonly #stopController = new AbortController();
  readonly #hardStopController = new AbortController();
  readonly #inFlight = new Map<string, InFlight>();
  readonly #runtime: WorkerRuntime;
  #session: LockSession | undefined;
  #active: Promise<unknown> | undefined;
  #stopping: Promise<void> | undefined;
  #hardStopAt = Number.POSITIVE_INFINITY;
  #hardStopTimer: unknown;
  #pass = 0;
  #stopped = false;
  #leading: Promise<void> | undefined;

  constructor(options: WorkerOptions) {
    this.#options = resolveWorkerOptions(options);
    this.id = this.#options.id;
    this.#events = new TypedEmitter<WorkerEvents>((error, event) => {
      if (event === 'error') {
        process.emitWarning(`baton worker ${this.id}: an 'error' listener threw: ${String(error)}`);
      } else {
        this.#emitError(error, 'listener');
      }
    });
    this.#runtime = {
      options: this.#options,
      stats: this.#stats,
      slots: new Slots(this.#options.concurrency),
      inFlight: this.#inFlight,
      stopSignal: this.#stopController.signal,
      hardStopSignal: this.#hardStopController.signal,
      emit: (event, payload) => this.#emit(event, payload),
      emitError: (error, phase, taskId) => this.#emitError(error, phase, taskId),
    };
  }

  /** Subscribes to an event. Returns a function that unsubscribes. */
  on<K extends keyof WorkerEvents>(event: K, listener: Listener<WorkerEvents, K>): () => void {
    return this.#events.on(event, listener);
  }

  /** Subscribes to the next occurrence of an event only. Returns a function that unsubscribes. */
  once<K extends keyof WorkerEvents>(event: K, listener: Listener<WorkerEvents, K>): () => void {
    return this.#events.once(event, listener);
  }

  /** Unsubscribes a listener added with {@link Worker.on}. */
  off<K extends keyof WorkerEvents>(event: K, listener: Listener<WorkerEvents, K>): void {
    this.#events.off(event, listener);
  }

  /** A snapshot of the worker's counters. */
  stats(): WorkerStats {
    return { ...this.#stats, inFlight: this.#inFlight.size };
  }

  /** Id of the current lock session, if one is open. */
  get sessionId(): string | undefined {
    return this.#session?.id;
  }

  /** True once `stop()` was called. */
  get stopping(): boolean {
    return this.#stopController.signal.aborted;
  }

  /**
   * Runs passes on the schedule until stopped (or, for `{ once: true }`, until one pass completed and its
   * tasks finished). Resolves after the worker has fully stopped: handlers settled or abandoned, leases
   * released, session destroyed. Never rejects because of source or lock errors: those are retried.
   */
  async run(): Promise<void> {
    this.#assertIdle('run');
    // Like a listening server, a running worker keeps the process alive between passes (baton's own
    // timers are unref'd, so an idle wait would otherwise let Node exit with run() still pending).
    const release = holdProcess();
    this.#leading = this.#lead();
    const loop = this.#loop();
    this.#active = loop;
    try {
      await loop;
    } finally {
      try {
        await this.stop();
      } finally {
        release();
      }
    }
  }

  /**
   * Makes one pass now and waits for the tasks it started. Opens the session if needed and leaves it open
   * for further calls: call `stop()` when done. Rejects when the pass fails (source or lock error).
   */
  async runOnce(): Promise<PassSummary> {
    this.#assertIdle('runOnce');
    const once = (async () => {
      try {
        const session = await this.#ensureSession();
        return await this.#runPass(session);
      } finally {
        await this.#drain();
      }
    })();
    this.#active = once;
    try {
      return await once;
    } finally {
      if (this.#active === once) this.#active = undefined;
    }
  }

  /**
   * Stops gracefully: takes no new task, lets running handlers finish within the grace period, then aborts
   * the rest (their signals abort; a handler that ignores it is abandoned after `abandonAfterMs` and its
   * attempt recorded as failed), releases leases and destroys the session. Idempotent: every call returns
   * the same promise; a call with a shorter `graceMs` shortens the grace period of a stop in progress.
   */
  stop(options: StopOptions = {}): Promise<void> {
    const graceMs = checkDuration(
      'stop(): graceMs',
      options.graceMs ?? this.#options.stopGraceMs,
      workerDurationBounds['stop.graceMs'],
    );
    this.#scheduleHardStop(graceMs);
    this.#stopping ??= this.#doStop();
    return this.#stopping;
  }

  /**
   * Stops the worker when the process receives one of `signals`; a second signal aborts running handlers at
   * once. Returns a function that removes the listeners (done automatically once stopped).
   */
  stopOnSignals(signals: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT']): () => void {
    const remove = onProcessSignals(
      signals,
      () => void this.stop(),
      () => this.#hardStop(new AbortedError(`worker ${this.id} stopped by a second signal`)),
    );
    const offStopped = this.once('stopped', remove);
    return () => {
      offStopped();
      remove();
    };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  async #loop(): Promise<void> {
    const { scheduler, clock, retryBaseMs, retryMaxMs, random } = this.#options;
    let delay = scheduler.firstDelay();
    let failures = 0;
    for (;;) {
      if (!(await this.#wait(delay))) return;
      let session: LockSession;
      try {
        session = await this.#ensureSession();
      } catch (error) {
        if (this.stopping) return;
        this.#emitError(error, 'session');
        delay = backoffDelay(failures++, { baseMs: retryBaseMs, maxMs: retryMaxMs, random });
        continue;
      }
      const startedAt = clock.monotonicNow();
      let summary: PassSummary;
      try {
        summary = await this.#runPass(session);
      } catch (error) {
        if (this.stopping) return;
        this.#emitError(error, 'pass');
        delay = backoffDelay(failures++, { baseMs: retryBaseMs, maxMs: retryMaxMs, random });
        continue;
      }
      if (summary.outcome === 'stopped') return;
      if (summary.outcome === 'session-lost') {
        // Start over on a new session at once, unless sessions keep getting lost.
        delay =
          failures === 0 ? 0 : backoffDelay(failures, { baseMs: retryBaseMs, maxMs: retryMaxMs, random });
        failures++;
        continue;
      }
      failures = 0;
      if (scheduler.once) {
        await this.#drain();
        return;
      }
      delay = scheduler.nextDelay(startedAt);
    }
  }

  /** Runs the leader-only hook until the worker stops; never rejects (errors become `error` events). */
  async #lead(): Promise<void> {
    const leader = this.#options.leader;
    if (!leader) return;
    try {
      await runWhileLeader(
        this.#options.locks,
        leader.key,
        async (leadership) => {
          this.#emit('leader-elected', { key: leader.key, term: leadership.term });
          try {
            await leader.run(leadership);
          } finally {
            this.#emit('leader-ended', {
              key: leader.key,
              term: leadership.term,
              reason: leadership.signal.aborted ? leadership.signal.reason : undefined,
            });
          }
        },
        {
          signal: this.#stopController.signal,
          value: { id: this.id, ...leader.value },
          sessionOptions: { ...this.#options.sessionOptions, name: `${this.id}-leader` },
          onError: (error) => this.#emitError(error, 'leader'),
          ...(leader.recampaignDelayMs !== undefined ? { recampaignDelayMs: leader.recampaignDelayMs } : {}),
        },
      );
    } catch (error) {
      this.#emitError(error, 'leader');
    }
  }

  async #runPass(session: LockSession): Promise<PassSummary> {
    this.#stats.passes++;
    const summary = await runPass(this.#runtime, session, ++this.#pass);
    if (summary.outcome === 'session-lost' && this.#session === session) {
      // The backend refused the session although its signal has not aborted (it expired server-side).
      this.#sessionLost(
        session,
        new SessionLostError(`session ${session.id} is no longer known to the backend`),
      );
    }
    return summary;
  }

  /** Waits `delay` ms (forever when undefined) unless stopping. Resolves false when the worker is stopping. */
  async #wait(delay: number | undefined): Promise<boolean> {
    const signal = this.#stopController.signal;
    if (signal.aborted) return false;
    if (delay === 0) return true;
    if (delay === undefined) {
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      return false;
    }
    await sleep(delay, { clock: this.#options.clock, signal }).catch(() => undefined);
    return !signal.aborted;
  }

  async #ensureSession(): Promise<LockSession> {
    if (this.#session && !this.#session.signal.aborted) return this.#session;
    if (this.stopping) throw new ClosedError(`worker ${this.id} is stopping`);
    const session = await this.#options.locks.openSession(this.#options.sessionOptions);
    if (this.stopping) {
      await this.#destroy(session);
      throw new ClosedError(`worker ${this.id} is stopping`);
    }
    this.#session = session;
    this.#stats.sessionsOpened++;
    this.#emit('session-opened', { sessionId: session.id });
    const onAbort = () => this.#sessionLost(session, session.signal.reason);
    if (session.signal.aborted) onAbort();
    else session.signal.addEventListener('abort', onAbort, { once: true });
    return session;
  }

  /** Forgets a lost session, aborts in-flight handlers and cleans the session up in the background. */
  #sessionLost(session: LockSession, reason: unknown): void {
    if (this.#session !== session) return;
    this.#session = undefined;
    this.#stats.sessionsLost++;
    this.#emit('session-lost', { sessionId: session.id, reason });
    const leaseReason = new LeaseLostError(`lock session ${session.id} was lost`, { cause: reason });
    for (const task of this.#inFlight.values()) task.abort(leaseReason);
    void this.#destroy(session);
  }

  async #destroy(session: LockSession): Promise<void> {
    try {
      await session.destroy();
    } catch (error) {
      this.#emitError(error, 'release');
    }
  }

  async #doStop(): Promise<void> {
    this.#stopController.abort(new ClosedError(`worker ${this.id} is stopping`));
    try {
      await Promise.all([this.#active?.catch(() => undefined), this.#leading]);
      await this.#drain();
    } finally {
      if (this.#hardStopTimer !== undefined) this.#options.clock.clearTimeout(this.#hardStopTimer);
    }
    const session = this.#session;
    this.#session = undefined;
    if (session) await this.#destroy(session);
    this.#stopped = true;
    this.#emit('stopped', { stats: this.stats() });
  }

  #scheduleHardStop(graceMs: number): void {
    const { clock } = this.#options;
    const at = clock.monotonicNow() + graceMs;
    if (this.#stopped || at >= this.#hardStopAt || this.#hardStopController.signal.aborted) return;
    this.#hardStopAt = at;
    if (this.#hardStopTimer !== undefined) clock.clearTimeout(this.#hardStopTimer);
    this.#hardStopTimer = clock.setTimeout(
      () =>
        this.#hardStop(
          new AbortedError(`worker ${this.id} stopped: handlers did not finish within ${graceMs} ms`),
        ),
      graceMs,
    );
  }

  /** Ends the grace period: aborts every running handler's signal and stops write retries. */
  #hardStop(reason: unknown): void {
    if (!this.#stopController.signal.aborted) void this.stop();
    if (this.#hardStopController.signal.aborted) return;
    this.#hardStopController.abort(reason);
    for (const task of this.#inFlight.values()) task.abort(reason);
  }

  async #drain(): Promise<void> {
    while (this.#inFlight.size > 0) {
      await Promise.all([...this.#inFlight.values()].map((task) => task.done));
    }
  }

  #assertIdle(what: string): void {
    if (this.stopping) throw new ClosedError(`worker ${this.id}: ${what}() after stop()`);
    if (this.#active) throw new InvalidArgumentError(`worker ${this.id}: ${what}() while already running`);
  }

  #emit<K extends keyof WorkerEvents>(event: K, payload: EventPayload<K>): void {
    this.#events.emit(event, { ...payload, workerId: this.id } as WorkerEvents[K]);
  }

  #emitError(error: unknown, phase: WorkerErrorPhase, taskId?: string): void {
    this.#stats.errors++;
    this.#emit('error', taskId === undefined ? { error, phase } : { error, phase, taskId });
  }
}
