/**
 * Request-level fault injection: scripted failures, added latency, and a pause that holds every request (and
 * every finished response) until resumed, like a hung server whose sockets still accept.
 */
import { type Clock, sleep } from '@baton/core';

/** Options of {@link FaultInjector.failNext}. */
export interface FailNextOptions {
  /** Status to answer with (default 503). */
  readonly status?: 500 | 503 | 429;
  /** Plain-text body (default `No cluster leader`, or Consul's rate-limit text for 429). */
  readonly body?: string;
  /** Only requests whose path starts with this fail (e.g. `/v1/session/renew`). */
  readonly pathPrefix?: string;
  /** Only requests with this method fail. */
  readonly method?: string;
  /**
   * Process the request first, then replace its response with the failure: the write happens but the client
   * never learns it did (a response lost after commit). Default false: the request is rejected untouched.
   */
  readonly afterProcessing?: boolean;
}

/** A failure to serve instead of (or after) processing a request. */
export interface ScriptedFailure {
  readonly status: number;
  readonly body: string;
  readonly afterProcessing: boolean;
}

interface Rule extends ScriptedFailure {
  remaining: number;
  readonly pathPrefix: string | undefined;
  readonly method: string | undefined;
}

/** Holds the fault knobs that act on requests (node checks and elections live in the agent). */
export class FaultInjector {
  #rules: Rule[] = [];
  #latencyMs = 0;
  #paused = false;
  #resumers = new Set<() => void>();

  constructor(readonly clock: Clock) {}

  /** Makes the next `count` matching requests fail. Rules queue up and are consumed in order. */
  failNext(count: number, options: FailNextOptions = {}): void {
    if (!Number.isInteger(count) || count < 0)
      throw new RangeError(`failNext count must be a non-negative integer, got ${count}`);
    if (count === 0) return;
    const status = options.status ?? 503;
    this.#rules.push({
      remaining: count,
      status,
      body: options.body ?? (status === 429 ? 'rate limit exceeded, try again later' : 'No cluster leader'),
      pathPrefix: options.pathPrefix,
      method: options.method?.toUpperCase(),
      afterProcessing: options.afterProcessing ?? false,
    });
  }

  /** Consumes and returns the first rule matching this request, if any. */
  take(method: string, path: string): ScriptedFailure | undefined {
    const index = this.#rules.findIndex(
      (r) =>
        (r.pathPrefix === undefined || path.startsWith(r.pathPrefix)) &&
        (r.method === undefined || r.method === method),
    );
    if (index === -1) return undefined;
    const rule = this.#rules[index]!;
    rule.remaining -= 1;
    if (rule.remaining === 0) this.#rules.splice(index, 1);
    return { status: rule.status, body: rule.body, afterProcessing: rule.afterProcessing };
  }

  setLatency(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0)
      throw new RangeError(`latency must be a non-negative number, got ${ms}`);
    this.#latencyMs = ms;
  }

  /** Waits the configured latency on the clock (returns early when `signal` aborts). */
  async delay(signal: AbortSignal): Promise<void> {
    if (this.#latencyMs <= 0) return;
    await sleep(this.#latencyMs, { clock: this.clock, signal }).catch(() => undefined);
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    const resumers = [...this.#resumers];
    this.#resumers.clear();
    for (const resume of resumers) resume();
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** Resolves immediately unless paused; then on resume or when `signal` aborts. */
  waitIfPaused(signal: AbortSignal): Promise<void> {
    if (!this.#paused || signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        this.#resumers.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.#resumers.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Drops every scripted failure, removes latency and resumes. */
  clear(): void {
    this.#rules = [];
    this.#latencyMs = 0;
    this.resume();
  }
}
