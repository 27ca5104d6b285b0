import { type Clock, sleep } from '../clock.js';
import type { TaskSource } from '../task-source.js';
import type { WorkerBeat } from '../worker-beat.js';

/** What a {@link Heartbeat} needs from its worker. */
export interface HeartbeatDeps {
  /** The source's `heartbeat` operation. */
  readonly send: NonNullable<TaskSource['heartbeat']>;
  readonly clock: Clock;
  readonly everyMs: number;
  /** Builds the beat to send now. */
  readonly beat: (state: WorkerBeat['state']) => WorkerBeat;
  /** A beat failed: reported (the worker turns it into an `error` event); the next tick tries again. */
  readonly onError: (error: unknown) => void;
}

/**
 * A worker's heartbeat: one beat at start, one every `everyMs` (measured from the start of the previous one,
 * never two at once: a slow beat delays the next instead of piling up), and a `stopped` beat on stop. It runs
 * beside the task loop and shares nothing with it but the source: a failing or hanging beat is reported and
 * retried at the next tick, and never stops or slows the loop.
 */
export class Heartbeat {
  readonly #deps: HeartbeatDeps;
  #timer: unknown;
  #inFlight: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  readonly #abort = new AbortController();

  constructor(deps: HeartbeatDeps) {
    this.#deps = deps;
  }

  /** Sends the first beat now and schedules the next ones. */
  start(): void {
    this.#tick();
  }

  /**
   * Stops the ticks, waits for a beat under way, then sends the `stopped` beat. Waits at most `waitMs` in all
   * (on the worker's clock): an unreachable source cannot hold up the worker's stop. Idempotent.
   */
  stop(waitMs: number): Promise<void> {
    this.#stopping ??= this.#stop(waitMs);
    return this.#stopping;
  }

  async #stop(waitMs: number): Promise<void> {
    const { clock } = this.#deps;
    if (this.#timer !== undefined) clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    const last = (async () => {
      await this.#inFlight;
      if (!this.#abort.signal.aborted) await this.#send('stopped');
    })();
    const timeout = new AbortController();
    await Promise.race([last, sleep(waitMs, { clock, signal: timeout.signal }).catch(() => undefined)]);
    timeout.abort();
    this.#abort.abort();
  }

  #tick(): void {
    this.#timer = undefined;
    if (this.#stopping) return;
    const { clock, everyMs } = this.#deps;
    const startedAt = clock.monotonicNow();
    const beat = this.#send('running').finally(() => {
      if (this.#inFlight === beat) this.#inFlight = undefined;
      if (this.#stopping) return;
      const wait = Math.max(0, everyMs - (clock.monotonicNow() - startedAt));
      this.#timer = clock.setTimeout(() => this.#tick(), wait);
    });
    this.#inFlight = beat;
  }

  /** Sends one beat; never rejects. */
  async #send(state: WorkerBeat['state']): Promise<void> {
    try {
      await this.#deps.send(this.#deps.beat(state), { signal: this.#abort.signal });
    } catch (error) {
      if (!this.#abort.signal.aborted) this.#deps.onError(error);
    }
  }
}
