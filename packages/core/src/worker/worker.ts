import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { backoffDelay } from '../backoff.js';
import { type BucketTaskSource, isBucketTaskSource } from '../bucket-source.js';
import { sleep } from '../clock.js';
import { checkDuration } from '../duration-bounds.js';
import { runWhileLeader } from '../election/run-while-leader.js';
import {
  AbortedError,
  BatonError,
  ClosedError,
  ConfigError,
  InvalidArgumentError,
  LeaseLostError,
  SessionLostError,
} from '../errors.js';
import { holdProcess } from '../hold-process.js';
import { describeLayout, type LayoutGuard, type LeaseLayout, layoutMatches } from '../lease-layout.js';
import type { LockSession } from '../lock.js';
import { MAX_BEAT_TASK_IDS, type WorkerBeat } from '../worker-beat.js';
import { BucketDispatcher, type BucketRunOutcome } from './bucket-mode/dispatcher.js';
import { type Listener, TypedEmitter } from './emitter.js';
import type { WorkerEnv } from './env.js';
import { emptyStats, type PassSummary, type WorkerEvents, type WorkerStats } from './events.js';
import { Heartbeat } from './heartbeat.js';
import { InFlightTasks, type RunningTask } from './in-flight.js';
import { KindLimits } from './limits.js';
import { applyObservation, type Observation } from './observations.js';
import {
  type ResolvedWorkerOptions,
  resolveWorkerOptions,
  type WorkerOptions,
  workerDurationBounds,
} from './options.js';
import { Slots } from './slots.js';
import {
  exitCodeOfSignal,
  onProcessSignals,
  type SignalListener,
  type StopOnSignalsOptions,
  type StopOptions,
} from './stop.js';
import { runPass } from './task-mode/pass.js';

/**
 * A worker: takes the source's due tasks and runs each one it can, so that across any number of workers every
 * task's outcome is applied exactly once. Two lease modes (`leaseBy`, one per task table):
 *
 * **task** (default), per task, on each pass of its schedule:
 * 1. `tryAcquire(lockKey(task))` on the worker's lock session; skip if someone holds it;
 * 2. `source.claim(id, lease.fence, workerId)`: fenced, refused if the task was finished or taken meanwhile;
 * 3. `handler({ task, fence, signal, workerId })`, `signal` aborting on lease loss, timeout or hard stop;
 * 4. `source.complete(id, fence, result)` or `source.fail(id, fence, error)`: fenced, a stale write changes
 *    nothing and is counted;
 * 5. release the lease.
 *
 * **bucket**: the worker holds leases on whole buckets of tasks, balanced among the live workers through
 * the lock backend alone; it claims many due tasks of a bucket in one fenced statement, runs them, and
 * writes their outcomes in batches, every write fenced by the bucket lease (see `BucketDispatcher`).
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
  readonly #inFlight = new InFlightTasks();
  readonly #env: WorkerEnv;
  /** Wakes the worker's loop from its wait for the next pass (set while it waits). */
  #wakeWaiter: (() => void) | undefined;
  #dueSincePassStart = false;
  #guard: LayoutGuard | undefined;
  #layout: LeaseLayout | undefined;
  #layoutError: BatonError | undefined;
  #session: LockSession | undefined;
  #active: Promise<unknown> | undefined;
  #stopping: Promise<void> | undefined;
  #hardStopAt = Number.POSITIVE_INFINITY;
  #hardStopTimer: unknown;
  #pass = 0;
  #stopped = false;
  #leading: Promise<void> | undefined;
  #heartbeat: Heartbeat | undefined;
  /** The worker's monotonic time when `run()` began (the heartbeat's uptime). */
  #startedAt = 0;

  constructor(options: WorkerOptions) {
    this.#options = resolveWorkerOptions(options);
    this.id = this.#options.id;
    this.#events = new TypedEmitter<WorkerEvents>((error, event) => {
      if (event === 'error') {
        process.emitWarning(`baton worker ${this.id}: an 'error' listener threw: ${String(error)}`);
      } else {
        this.#observe({ type: 'error', error, phase: 'listener' });
      }
    });
    const worker = this;
    this.#env = {
      options: this.#options,
      instance: randomUUID(),
      handlerSlots: new Slots(this.#options.concurrency),
      inFlight: this.#inFlight,
      limits: new KindLimits(this.#options.limits),
      stopSignal: this.#stopController.signal,
      hardStopSignal: this.#hardStopController.signal,
      get guard() {
        return worker.#guard;
      },
      observe: (observation) => this.#observe(observation),
      layoutChanged: () => this.#layoutChanged(),
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

  /**
   * The tasks whose handlers run right now (or whose outcomes are being written), with their fences and how
   * long each has run. For dashboards and heartbeats; a snapshot, cheap to take.
   */
  running(): RunningTask[] {
    return this.#inFlight.running(this.#options.clock.monotonicNow());
  }

  /** Id of the current lock session, if one is open. */
  get sessionId(): string | undefined {
    return this.#session?.id;
  }

  /** True once `stop()` was called. */
  get stopping(): boolean {
    return this.#stopController.signal.aborted;
  }

  /** The task table's lease layout this worker runs under, once known (after `run()` or `runOnce()` began). */
  get layout(): LeaseLayout | undefined {
    return this.#layout;
  }

  /**
   * Runs on the schedule until stopped (or, for `{ once: true }`, until one pass completed and its tasks
   * finished; in bucket mode, until its buckets hold no due task). Resolves after the worker has fully
   * stopped: handlers settled or abandoned, leases released, session destroyed. Never rejects because of
   * source or lock errors (those are retried); rejects with a `CONFIG_INVALID` error when the task table's
   * lease layout is not this worker's (see `leaseBy`), at start or when it changes while the worker runs.
   */
  async run(): Promise<void> {
    this.#assertIdle('run');
    // Like a listening server, a running worker keeps the process alive between passes (baton's own
    // timers are unref'd, so an idle wait would otherwise let Node exit with run() still pending).
    const release = holdProcess();
    const offDue = this.#subscribeDue();
    this.#startHeartbeat();
    this.#leading = this.#lead();
    const loop = this.#options.leaseBy === 'bucket' ? this.#bucketLoop() : this.#taskLoop();
    this.#active = loop;
    let failure: unknown;
    try {
      await loop;
    } catch (error) {
      failure = error;
    } finally {
      offDue();
      try {
        await this.stop();
      } finally {
        release();
      }
    }
    if (failure !== undefined) throw failure;
    if (this.#layoutError) throw this.#layoutError;
  }

  /**
   * Task mode: makes one pass now and waits for the tasks it started. Opens the session if needed and leaves
   * it open for further calls: call `stop()` when done. Rejects when the pass fails (source or lock error, or a
   * layout mismatch). In bucket mode there are no passes: use `run()` with `schedule: { once: true }`.
   */
  async runOnce(): Promise<PassSummary> {
    this.#assertIdle('runOnce');
    if (this.#options.leaseBy === 'bucket') {
      throw new InvalidArgumentError(
        `worker ${this.id}: runOnce() makes a task-mode pass; in bucket mode use run() with schedule { once: true }`,
      );
    }
    const once = (async () => {
      try {
        await this.#prepareLayout();
        const session = await this.#ensureSession();
        return await this.#runPass(session);
      } finally {
        await this.#inFlight.drain();
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
   * attempt recorded as failed), writes outcomes, releases leases and destroys the session. Idempotent: every
   * call returns the same promise; a call with a shorter `graceMs` shortens the grace period of a stop in
   * progress.
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
   * Stops the worker when the process receives one of `signals` (default SIGTERM and SIGINT), escalating:
   * 1. the first signal stops gracefully (`stop()`: no new task, running handlers get the grace period);
   * 2. a second one aborts running handlers at once;
   * 3. with `exitOnThird`, a third one exits the process at once with the signal's exit code (130/143).
   * Takes the signals (the former signature) or {@link StopOnSignalsOptions}. Returns a function that removes
   * the listeners (done automatically once stopped).
   */
  stopOnSignals(options: readonly NodeJS.Signals[] | StopOnSignalsOptions = {}): () => void {
    const {
      signals = ['SIGTERM', 'SIGINT'],
      onSignal,
      exitOnThird = false,
      target = process,
    } = Array.isArray(options)
      ? { signals: options as readonly NodeJS.Signals[] }
      : (options as StopOnSignalsOptions);
    let count = 0;
    const announce = (signal: NodeJS.Signals) => onSignal?.(signal, ++count);
    const steps: SignalListener[] = [
      (signal) => {
        announce(signal);
        void this.stop();
      },
      (signal) => {
        announce(signal);
        this.#hardStop(new AbortedError(`worker ${this.id} stopped by a second signal`));
      },
    ];
    if (exitOnThird) {
      steps.push((signal) => {
        announce(signal);
        target.exit(exitCodeOfSignal(signal));
      });
    }
    const remove = onProcessSignals(signals, steps, target);
    const offStopped = this.once('stopped', remove);
    return () => {
      offStopped();
      remove();
    };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /** Task mode: passes on the schedule (sooner when the source says tasks became due). */
  async #taskLoop(): Promise<void> {
    const { scheduler, clock } = this.#options;
    let delay = scheduler.firstDelay();
    let failures = 0;
    for (;;) {
      if (!(await this.#wait(delay))) return;
      let session: LockSession;
      try {
        await this.#prepareLayout();
        session = await this.#ensureSession();
      } catch (error) {
        if (this.stopping) return;
        if (isFatal(error)) throw error;
        this.#observe({ type: 'error', error, phase: 'session' });
        delay = this.#backoff(failures++);
        continue;
      }
      const startedAt = clock.monotonicNow();
      this.#dueSincePassStart = false;
      let summary: PassSummary;
      try {
        summary = await this.#runPass(session);
      } catch (error) {
        if (this.stopping) return;
        this.#observe({ type: 'error', error, phase: 'pass' });
        delay = this.#backoff(failures++);
        continue;
      }
      if (summary.outcome === 'stopped') return;
      if (summary.outcome === 'session-lost') {
        // Start over on a new session at once, unless sessions keep getting lost.
        delay = failures === 0 ? 0 : this.#backoff(failures);
        failures++;
        continue;
      }
      failures = 0;
      if (scheduler.once) {
        await this.#inFlight.drain();
        return;
      }
      delay = this.#dueSincePassStart ? 0 : scheduler.nextDelay(startedAt);
    }
  }

  /** Bucket mode: runs the bucket dispatcher, on a new session after each loss, until stopped or drained. */
  async #bucketLoop(): Promise<void> {
    let failures = 0;
    for (;;) {
      if (this.stopping) return;
      let session: LockSession;
      try {
        await this.#prepareLayout();
        session = await this.#ensureSession();
      } catch (error) {
        if (this.stopping) return;
        if (isFatal(error)) throw error;
        this.#observe({ type: 'error', error, phase: 'session' });
        if (!(await this.#wait(this.#backoff(failures++)))) return;
        continue;
      }
      let outcome: BucketRunOutcome;
      try {
        outcome = await this.#runBuckets(session, this.#options.scheduler.once);
      } catch (error) {
        if (this.stopping) return;
        this.#observe({ type: 'error', error, phase: 'buckets' });
        if (!(await this.#wait(this.#backoff(failures++)))) return;
        continue;
      }
      if (outcome !== 'session-lost') {
        await this.#inFlight.drain();
        return;
      }
      failures = failures === 0 ? 1 : failures + 1;
      if (failures > 1 && !(await this.#wait(this.#backoff(failures - 1)))) return;
    }
  }

  async #runBuckets(session: LockSession, once: boolean): Promise<BucketRunOutcome> {
    const source = this.#options.source as BucketTaskSource;
    const outcome = await new BucketDispatcher(this.#env, session, source, this.#layout!, once).run();
    if (outcome === 'session-lost' && this.#session === session && !session.signal.aborted) {
      this.#sessionLost(
        session,
        new SessionLostError(`session ${session.id} is no longer known to the backend`),
      );
    }
    return outcome;
  }

  /**
   * Declares this worker's layout to a source that keeps one and checks it is the table's. Once per worker;
   * transient errors propagate (retried by the loop), a mismatch or a missing capability is fatal.
   */
  async #prepareLayout(): Promise<void> {
    if (this.#layout || (this.#options.leaseBy === 'task' && !hasLayouts(this.#options.source))) return;
    const { source, locks, leaseBy, buckets } = this.#options;
    if (leaseBy === 'bucket') {
      if (!isBucketTaskSource(source)) {
        throw new ConfigError(
          'leaseBy',
          'leaseBy: bucket mode needs a task source with the bucket operations (the memory and PostgreSQL sources ' +
            "have them); this source has none. Fix: use leaseBy 'task' with it.",
        );
      }
      if (!locks.capabilities.list || typeof locks.list !== 'function') {
        throw new ConfigError(
          'leaseBy',
          `leaseBy: bucket mode balances buckets with list(), which the '${locks.backend}' lock backend does not ` +
            "offer. Fix: use leaseBy 'task' with this backend.",
        );
      }
      if (buckets.count > source.shards) {
        throw new ConfigError(
          'buckets.count',
          `buckets.count: ${buckets.count} buckets, but the source has only ${source.shards} shards. Fix: at most ${source.shards}.`,
        );
      }
    }
    const request = {
      mode: leaseBy,
      ...(leaseBy === 'bucket' ? { buckets: buckets.count } : {}),
      locks: locks.backend,
    };
    const layout = await (source as BucketTaskSource).declareLeaseLayout(request);
    if (!layoutMatches(layout, request)) {
      const field =
        layout.mode !== request.mode
          ? 'leaseBy'
          : layout.buckets !== (request.buckets ?? null)
            ? 'buckets.count'
            : 'locks';
      throw new ConfigError(
        field,
        `${field}: this task table runs ${describeLayout(layout)} (layout epoch ${layout.epoch}), and every worker ` +
          `of a table must use the table's layout; this worker asks for ${describeLayout(request)}. Fix: start it ` +
          `with the table's settings, or stop every worker and change the layout ('baton tasks layout', or ` +
          `source.changeLeaseLayout()).`,
      );
    }
    this.#layout = layout;
    this.#guard = { epoch: layout.epoch };
  }

  /** The source refused a write under this worker's layout epoch: the layout changed; stop with an error. */
  #layoutChanged(): void {
    if (this.#layoutError) return;
    this.#layoutError = new ConfigError(
      'leaseBy',
      `the task table's lease layout changed while worker ${this.id} ran under ${this.#layout ? describeLayout(this.#layout) : 'its layout'} ` +
        `(epoch ${this.#guard?.epoch}): its writes are refused from now on. Fix: restart the worker with the table's new settings.`,
    );
    this.#observe({ type: 'error', error: this.#layoutError, phase: 'pass' });
    void this.stop();
  }

  /** Starts publishing heartbeats, if the source takes them and they are not turned off. */
  #startHeartbeat(): void {
    const { source, clock, heartbeatEveryMs } = this.#options;
    this.#startedAt = clock.monotonicNow();
    if (heartbeatEveryMs === undefined || typeof source.heartbeat !== 'function') return;
    this.#heartbeat = new Heartbeat({
      send: (beat, options) => source.heartbeat!(beat, options),
      clock,
      everyMs: heartbeatEveryMs,
      beat: (state) => this.#beat(state, heartbeatEveryMs),
      onError: (error) => this.#observe({ type: 'error', error, phase: 'heartbeat' }),
    });
    this.#heartbeat.start();
  }

  /** What the heartbeat publishes now. */
  #beat(state: WorkerBeat['state'], intervalMs: number): WorkerBeat {
    const { clock, leaseBy, locks } = this.#options;
    const running = this.running().sort((a, b) => b.runningMs - a.runningMs);
    const s = this.#stats;
    return {
      workerId: this.id,
      instance: this.#env.instance,
      state,
      host: hostname(),
      pid: process.pid,
      uptimeMs: Math.max(0, Math.round(clock.monotonicNow() - this.#startedAt)),
      mode: leaseBy,
      locks: locks.backend,
      intervalMs,
      running: this.#inFlight.size,
      taskIds: running.slice(0, MAX_BEAT_TASK_IDS).map((task) => task.taskId),
      counters: {
        claimed: s.claimed,
        completed: s.completed,
        failed: s.failed,
        dead: s.dead,
        leaseLost: s.leaseLost,
        staleWrites: s.staleWrites,
        errors: s.errors,
      },
    };
  }

  /** Wakes a task-mode worker between passes when the source says tasks became due. */
  #subscribeDue(): () => void {
    const { source, wakeOnEnqueue, scheduler, leaseBy } = this.#options;
    if (!wakeOnEnqueue || leaseBy !== 'task' || scheduler.kind !== 'every' || !source.onDue) {
      return () => {};
    }
    return source.onDue(() => {
      this.#dueSincePassStart = true;
      this.#wakeWaiter?.();
    });
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
          onError: (error) => this.#observe({ type: 'error', error, phase: 'leader' }),
          ...(leader.recampaignDelayMs !== undefined ? { recampaignDelayMs: leader.recampaignDelayMs } : {}),
        },
      );
    } catch (error) {
      this.#observe({ type: 'error', error, phase: 'leader' });
    }
  }

  async #runPass(session: LockSession): Promise<PassSummary> {
    const summary = await runPass(this.#env, session, ++this.#pass);
    if (summary.outcome === 'session-lost' && this.#session === session) {
      // The backend refused the session although its signal has not aborted (it expired server-side).
      this.#sessionLost(
        session,
        new SessionLostError(`session ${session.id} is no longer known to the backend`),
      );
    }
    return summary;
  }

  /**
   * Waits `delay` ms (forever when undefined) unless stopping, or until the source says tasks became due.
   * Resolves false when the worker is stopping.
   */
  async #wait(delay: number | undefined): Promise<boolean> {
    const signal = this.#stopController.signal;
    if (signal.aborted) return false;
    if (delay === 0) return true;
    const woken = new AbortController();
    const onStop = () => woken.abort();
    signal.addEventListener('abort', onStop, { once: true });
    this.#wakeWaiter = onStop;
    try {
      if (delay === undefined) {
        if (!woken.signal.aborted) {
          await new Promise<void>((resolve) =>
            woken.signal.addEventListener('abort', () => resolve(), { once: true }),
          );
        }
      } else {
        await sleep(delay, { clock: this.#options.clock, signal: woken.signal }).catch(() => undefined);
      }
    } finally {
      this.#wakeWaiter = undefined;
      signal.removeEventListener('abort', onStop);
    }
    return !signal.aborted;
  }

  #backoff(failures: number): number {
    const { retryBaseMs, retryMaxMs, random } = this.#options;
    return backoffDelay(failures, { baseMs: retryBaseMs, maxMs: retryMaxMs, random });
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
    this.#inFlight.abort(new LeaseLostError(`lock session ${session.id} was lost`, { cause: reason }));
    void this.#destroy(session);
  }

  async #destroy(session: LockSession): Promise<void> {
    try {
      await session.destroy();
    } catch (error) {
      this.#observe({ type: 'error', error, phase: 'release' });
    }
  }

  async #doStop(): Promise<void> {
    this.#stopController.abort(new ClosedError(`worker ${this.id} is stopping`));
    try {
      await Promise.all([this.#active?.catch(() => undefined), this.#leading]);
      await this.#inFlight.drain();
    } finally {
      if (this.#hardStopTimer !== undefined) this.#options.clock.clearTimeout(this.#hardStopTimer);
    }
    const session = this.#session;
    this.#session = undefined;
    if (session) await this.#destroy(session);
    await this.#heartbeat?.stop(this.#options.heartbeatEveryMs ?? 0);
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
    this.#inFlight.abort(reason);
  }

  #assertIdle(what: string): void {
    if (this.stopping) throw new ClosedError(`worker ${this.id}: ${what}() after stop()`);
    if (this.#active) throw new InvalidArgumentError(`worker ${this.id}: ${what}() while already running`);
  }

  #observe(observation: Observation): void {
    const event = applyObservation(this.#stats, observation);
    if (event) this.#emit(event.name, event.payload as never);
  }

  #emit<K extends keyof WorkerEvents>(event: K, payload: Omit<WorkerEvents[K], 'workerId'>): void {
    // Per-task events are most of a busy worker's events: build the payload only for a listener.
    if (this.#events.listenerCount(event) === 0) return;
    this.#events.emit(event, { ...payload, workerId: this.id } as WorkerEvents[K]);
  }
}

/** Errors that retrying cannot fix: the worker's configuration does not fit the task table or backend. */
function isFatal(error: unknown): boolean {
  return error instanceof BatonError && error.code === 'CONFIG_INVALID';
}

function hasLayouts(source: unknown): boolean {
  return typeof (source as Partial<BucketTaskSource>).declareLeaseLayout === 'function';
}
