/**
 * A handler's abort, with its `AbortSignal` made only when somebody asks for it. Handlers of short tasks
 * rarely read their signal, and an `AbortController` with its listeners was a large share of a busy worker's
 * CPU per task. Aborting before the signal exists is remembered: the signal, when made, is already aborted
 * with the same reason.
 */
export class LazyAbort {
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown;
  readonly #listeners: Array<() => void> = [];

  get aborted(): boolean {
    return this.#aborted;
  }

  /** Why it aborted (undefined while it has not). */
  get reason(): unknown {
    return this.#reason;
  }

  /** The signal handed to the handler; made on first use. */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  /** Aborts once; later calls change nothing. */
  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
    for (const listener of this.#listeners.splice(0)) listener();
  }

  /** Calls `listener` once when it aborts (at once if it has). Returns a function that removes it. */
  onAbort(listener: () => void): () => void {
    if (this.#aborted) {
      listener();
      return () => {};
    }
    this.#listeners.push(listener);
    return () => {
      const at = this.#listeners.indexOf(listener);
      if (at >= 0) this.#listeners.splice(at, 1);
    };
  }
}

const sharedWatchers = new WeakMap<AbortSignal, Set<() => void>>();

/**
 * Calls `listener` once when `signal` aborts. Listeners of one signal share a single event listener: in
 * bucket mode every task of a bucket watches the same lease signal, and adding and removing an event listener
 * per task cost more than the task. Returns a function that removes the listener.
 */
export function onSignalAbort(signal: AbortSignal, listener: () => void): () => void {
  if (signal.aborted) {
    listener();
    return () => {};
  }
  let watchers = sharedWatchers.get(signal);
  if (!watchers) {
    const set = new Set<() => void>();
    watchers = set;
    sharedWatchers.set(signal, set);
    signal.addEventListener(
      'abort',
      () => {
        sharedWatchers.delete(signal);
        for (const watcher of set) watcher();
        set.clear();
      },
      { once: true },
    );
  }
  const set = watchers;
  const once = () => {
    set.delete(once);
    listener();
  };
  set.add(once);
  return () => set.delete(once);
}
