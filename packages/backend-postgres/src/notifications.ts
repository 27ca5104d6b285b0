import { backoffDelay, UnavailableError } from '@baton/core';
import pg from 'pg';
import { BACKEND } from './errors.js';

type Wake = () => void;

/** What {@link LockNotifications} needs. */
export interface LockNotificationsInit {
  /** How to open the dedicated connection (the pool's settings, one connection). */
  clientConfig: pg.ClientConfig;
  channel: string;
  /** Told about every loss of the LISTEN connection and every failed attempt to open it. */
  report: (error: unknown, context: string) => void;
}

/**
 * One LISTEN connection per provider, opened while somebody watches a key and closed after the last
 * watcher leaves. Writers `pg_notify` the channel with the key; watchers of that key are woken. A lost
 * connection is reported and re-opened with backoff, and every watcher is then woken (notifications sent
 * while nobody listened are lost), besides the watchers' own polling, which covers expiries: nobody
 * notifies when a session simply runs out.
 */
export class LockNotifications {
  readonly #init: LockNotificationsInit;
  readonly #watchers = new Map<string, Set<Wake>>();
  #client: pg.Client | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #failures = 0;
  #closed = false;

  constructor(init: LockNotificationsInit) {
    this.#init = init;
  }

  /** Wakes `wake` on each notification for `key` and after each reconnect. Returns the unsubscribe. */
  subscribe(key: string, wake: Wake): () => void {
    let set = this.#watchers.get(key);
    if (!set) {
      set = new Set();
      this.#watchers.set(key, set);
    }
    set.add(wake);
    if (!this.#client && !this.#retryTimer && !this.#closed) this.#connect();
    return () => {
      set.delete(wake);
      if (set.size === 0 && this.#watchers.get(key) === set) this.#watchers.delete(key);
      if (this.#watchers.size === 0) this.#disconnect();
    };
  }

  close(): void {
    this.#closed = true;
    this.#watchers.clear();
    this.#disconnect();
  }

  #connect(): void {
    const client = new pg.Client(this.#init.clientConfig);
    this.#client = client;
    client.on('notification', (message) => {
      if (message.channel !== this.#init.channel || message.payload === undefined) return;
      for (const wake of this.#watchers.get(message.payload) ?? []) wake();
    });
    client.on('error', (error) => this.#lost(client, error));
    client.on('end', () => this.#lost(client, new Error('connection ended')));
    client
      .connect()
      .then(() => client.query(`LISTEN "${this.#init.channel}"`))
      .then(
        () => {
          if (this.#client !== client) return;
          this.#failures = 0;
          this.#wakeAll();
        },
        (error: unknown) => this.#lost(client, error),
      );
  }

  #lost(client: pg.Client, error: unknown): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    client.end().catch(() => undefined);
    this.#init.report(
      new UnavailableError(
        `postgres: the LISTEN connection for lock notifications was lost; watchers poll until it is back`,
        { backend: BACKEND, cause: error },
      ),
      'listen for lock notifications',
    );
    this.#wakeAll();
    if (this.#closed || this.#watchers.size === 0) return;
    const delay = backoffDelay(this.#failures++, { baseMs: 100, maxMs: 10_000 });
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (!this.#closed && this.#watchers.size > 0) this.#connect();
    }, delay);
    this.#retryTimer.unref();
  }

  #disconnect(): void {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    const client = this.#client;
    this.#client = undefined;
    // Ending the connection ends its LISTEN too; a failure to say goodbye is nobody's concern.
    client?.end().catch(() => undefined);
  }

  #wakeAll(): void {
    for (const set of this.#watchers.values()) for (const wake of set) wake();
  }
}
