import {
  type LockSession,
  MemoryLockProvider,
  type MemoryLockProviderOptions,
  MemoryLockStore,
  type MemorySession,
  type SessionOptions,
  UnavailableError,
} from '../../src/index.js';
import type { WorkerEvents } from '../../src/worker/index.js';
import type { Worker } from '../../src/worker/worker.js';

/** A memory provider that remembers the sessions it opened, so a test can crash one. */
export class RecordingProvider extends MemoryLockProvider {
  readonly sessions: MemorySession[] = [];

  constructor(options: MemoryLockProviderOptions) {
    super(options);
  }

  override async openSession(options?: SessionOptions): Promise<MemorySession> {
    const session = await super.openSession(options);
    this.sessions.push(session);
    return session;
  }

  /** The latest session this provider opened. */
  get last(): MemorySession {
    const session = this.sessions.at(-1);
    if (!session) throw new Error('no session opened yet');
    return session;
  }
}

/** A fresh store and a provider on it with short TTLs. */
export function memoryLocks(options: { ttlMs?: number; lockDelayMs?: number } = {}) {
  const store = new MemoryLockStore({ recordHistory: true });
  const provider = (): RecordingProvider =>
    new RecordingProvider({ store, ttlMs: options.ttlMs ?? 2_000, lockDelayMs: options.lockDelayMs ?? 0 });
  return { store, provider };
}

/** Collects every payload of `event`. */
export function record<K extends keyof WorkerEvents>(worker: Worker, event: K): WorkerEvents[K][] {
  const seen: WorkerEvents[K][] = [];
  worker.on(event, (payload) => seen.push(payload));
  return seen;
}

/** Resolves with the first payload of `event` that satisfies `predicate`. */
export function nextEvent<K extends keyof WorkerEvents>(
  worker: Worker,
  event: K,
  predicate: (payload: WorkerEvents[K]) => boolean = () => true,
): Promise<WorkerEvents[K]> {
  return new Promise((resolve) => {
    const off = worker.on(event, (payload) => {
      if (predicate(payload)) {
        off();
        resolve(payload);
      }
    });
  });
}

/** Polls `condition` every few ms until true; rejects after `timeoutMs`. */
export async function until(condition: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A promise with its resolve function exposed. */
export function gate<T = void>(): { promise: Promise<T>; open: (value: T) => void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

export const sleepMs = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export type { LockSession };

/**
 * One machine's connection to a shared MemoryLockStore that can be cut: while `cut`, every request fails with
 * UNAVAILABLE (a partition), so only this machine's sessions are lost; a session id in `cutSessions` loses
 * only the requests made for that session (renewals, acquisitions, releases, its destroy). Give it to a
 * MemoryLockProvider as its `store`.
 */
export class CuttableStore {
  cut = false;
  readonly cutSessions = new Set<string>();
  readonly #store: MemoryLockStore;

  constructor(store: MemoryLockStore) {
    this.#store = store;
  }

  get clock() {
    return this.#store.clock;
  }

  /** The provider option: this view typed as the store it forwards to. */
  get asStore(): MemoryLockStore {
    return this as unknown as MemoryLockStore;
  }

  #check(operation: string, sessionId?: string): void {
    if (this.cut || (sessionId !== undefined && this.cutSessions.has(sessionId))) {
      throw new UnavailableError(`cut off: ${operation} did not reach the lock server`, {
        backend: 'memory',
      });
    }
  }

  createSession(options: Parameters<MemoryLockStore['createSession']>[0]) {
    this.#check('create session');
    return this.#store.createSession(options);
  }

  renewSession(id: string) {
    this.#check('renew', id);
    return this.#store.renewSession(id);
  }

  destroySession(id: string) {
    this.#check('destroy session', id);
    return this.#store.destroySession(id);
  }

  acquire(...args: Parameters<MemoryLockStore['acquire']>) {
    this.#check('acquire', args[0]);
    return this.#store.acquire(...args);
  }

  release(...args: Parameters<MemoryLockStore['release']>) {
    this.#check('release', args[0]);
    return this.#store.release(...args);
  }

  publish(...args: Parameters<MemoryLockStore['publish']>) {
    this.#check('publish', args[0]);
    return this.#store.publish(...args);
  }

  holder(key: string) {
    this.#check('read');
    return this.#store.holder(key);
  }

  list(prefix?: string) {
    this.#check('list');
    return this.#store.list(prefix);
  }

  forceRelease(key: string) {
    this.#check('force release');
    return this.#store.forceRelease(key);
  }

  subscribe(key: string, signal?: AbortSignal) {
    return this.#store.subscribe(key, signal);
  }
}
