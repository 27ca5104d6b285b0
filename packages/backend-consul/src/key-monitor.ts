import {
  type Clock,
  jitter,
  LeaseLostError,
  MAX_TIMER_MS,
  type ManagedLease,
  sessionRetryDelay,
  sleep,
  type TimerHandle,
} from '@baton/core';
import { sessionOf } from './entry.js';
import { BACKEND } from './errors.js';
import type { ConsulHttp } from './http.js';

/** The per-lease state a monitor reads: the key in Consul and the `ModifyIndex` of our last write. */
export interface MonitoredState {
  readonly consulKey: string;
  index: number;
}

/** What {@link KeyMonitors} needs from its session. */
export interface KeyMonitorsInit {
  sessionId: string;
  http: ConsulHttp;
  clock: Clock;
  ttlMs: number;
  /** A lease held this long gets a monitor. At {@link MAX_TIMER_MS} or more: never. */
  monitorAfterMs: number;
  /** `?wait` of the monitor's blocking queries. */
  watchWaitMs: number;
  report: (error: unknown, context: string) => void;
}

interface Monitor {
  timer: TimerHandle | undefined;
  controller: AbortController;
}

/**
 * Watches the keys of long-held leases: a lease held longer than `monitorAfterMs` gets a `?consistent`
 * blocking query on its key that ends the lease when another session (or nobody) holds it or the key is
 * deleted. Errors are retried with jittered backoff, never treated as loss. Short leases never pay for it.
 */
export class KeyMonitors<S extends MonitoredState> {
  readonly #init: KeyMonitorsInit;
  readonly #monitors = new Map<ManagedLease<S>, Monitor>();

  constructor(init: KeyMonitorsInit) {
    this.#init = init;
  }

  /** Starts monitoring `lease` once it has been held `monitorAfterMs`. */
  start(lease: ManagedLease<S>): void {
    if (this.#init.monitorAfterMs >= MAX_TIMER_MS) return;
    const monitor: Monitor = { timer: undefined, controller: new AbortController() };
    this.#monitors.set(lease, monitor);
    monitor.timer = this.#init.clock.setTimeout(() => {
      monitor.timer = undefined;
      void this.#monitor(lease, monitor.controller.signal);
    }, this.#init.monitorAfterMs);
  }

  /** Stops monitoring `lease` (its lease ended). */
  stop(lease: ManagedLease<S>): void {
    const monitor = this.#monitors.get(lease);
    if (!monitor) return;
    this.#monitors.delete(lease);
    if (monitor.timer !== undefined) this.#init.clock.clearTimeout(monitor.timer);
    monitor.controller.abort();
  }

  stopAll(): void {
    for (const lease of [...this.#monitors.keys()]) this.stop(lease);
  }

  async #monitor(lease: ManagedLease<S>, signal: AbortSignal): Promise<void> {
    const { http, clock, ttlMs, sessionId } = this.#init;
    const { consulKey } = lease.state;
    let index = lease.state.index;
    let failures = 0;
    while (!signal.aborted && lease.held) {
      try {
        const { entry, index: next } = await http.getKey(consulKey, {
          consistent: true,
          index,
          waitMs: this.#init.watchWaitMs,
          signal,
        });
        failures = 0;
        if (signal.aborted || !lease.held) return;
        const holder = sessionOf(entry);
        if (holder !== sessionId) {
          const why = !entry
            ? 'the key was deleted at Consul'
            : holder
              ? `session ${holder} holds it now`
              : 'Consul released it (force-release or session invalidation)';
          lease.markLost(new LeaseLostError(`lease '${lease.key}' lost: ${why}`, { backend: BACKEND }));
          return;
        }
        const sent = index;
        index = next < index ? 0 : Math.max(1, next);
        if (index === sent) {
          // The wait ran out without a change; a short pause keeps a server that answers at once from spinning us.
          await sleep(jitter(Math.max(10, Math.min(1_000, ttlMs / 10)), 0.5), { signal, clock }).catch(
            () => undefined,
          );
        }
      } catch (error) {
        if (signal.aborted || !lease.held) return;
        this.#init.report(error, `monitor '${lease.key}'`);
        await sleep(sessionRetryDelay(failures++, ttlMs), { signal, clock }).catch(() => undefined);
      }
    }
  }
}
