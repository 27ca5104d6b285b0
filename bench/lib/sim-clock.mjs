// Virtual time for simulations: a Clock (the @baton/core interface) whose time moves only when the simulation
// says so, with a heap of timers. Each worker gets a view of it that can be frozen (a crashed process: its
// timers never fire again, new ones are never armed), so one process can host hundreds of simulated workers.

const START_WALL = Date.UTC(2026, 0, 1);

/** A binary min-heap of timers ordered by due time, then arming order. */
class TimerHeap {
  items = [];

  push(timer) {
    const a = this.items;
    a.push(timer);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(a[i], a[parent])) break;
      [a[i], a[parent]] = [a[parent], a[i]];
      i = parent;
    }
  }

  peek() {
    return this.items[0];
  }

  pop() {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && before(a[l], a[m])) m = l;
        if (r < a.length && before(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}

function before(x, y) {
  return x.at < y.at || (x.at === y.at && x.seq < y.seq);
}

const yieldToEventLoop = () => new Promise((resolve) => setImmediate(resolve));

/**
 * The simulation's clock. `runFor(ms)` fires every timer that falls due, in time order; after each instant's
 * timers it lets every pending promise callback run (one turn of the event loop), so code awaiting the lock
 * store reacts before time moves on, as it would on a real machine with instant round trips.
 */
export class SimClock {
  #now = 0;
  #seq = 0;
  #heap = new TimerHeap();

  monotonicNow() {
    return this.#now;
  }

  wallNow() {
    return START_WALL + this.#now;
  }

  setTimeout(fn, ms) {
    const wait = Number.isNaN(ms) ? 0 : Math.max(0, ms);
    const timer = { at: this.#now + wait, seq: this.#seq++, fn, cancelled: false };
    if (Number.isFinite(timer.at)) this.#heap.push(timer);
    return timer;
  }

  clearTimeout(handle) {
    if (handle && typeof handle === 'object') handle.cancelled = true;
  }

  /** Moves time `ms` forward, firing due timers; `onInstant(now)` runs after each instant that fired any. */
  async runFor(ms, onInstant) {
    const target = this.#now + ms;
    await yieldToEventLoop();
    for (;;) {
      const next = this.#heap.peek();
      if (!next || next.at > target) break;
      const at = next.at;
      this.#now = at;
      while (this.#heap.peek()?.at === at) {
        const timer = this.#heap.pop();
        if (!timer.cancelled) timer.fn();
      }
      await yieldToEventLoop();
      onInstant?.(at);
    }
    this.#now = target;
    await yieldToEventLoop();
  }

  /** A worker's own view of this clock; `freeze()` stops all its timers for good (the process died). */
  view() {
    let frozen = false;
    return {
      monotonicNow: () => this.monotonicNow(),
      wallNow: () => this.wallNow(),
      setTimeout: (fn, ms) => (frozen ? { cancelled: true } : this.setTimeout(() => frozen || fn(), ms)),
      clearTimeout: (handle) => this.clearTimeout(handle),
      freeze: () => {
        frozen = true;
      },
    };
  }
}
