import { createHash } from 'node:crypto';
import { type BatonError, backoffDelay } from '@baton/core';
import { toBatonError } from './errors.js';
import type { PgPool, PgPoolClient } from './pool.js';

/** The NOTIFY channel of a schema: a hash, so any schema name fits PostgreSQL's 63-byte identifiers. */
export function dueChannel(schema: string): string {
  return `baton_due_${createHash('sha256').update(schema).digest('hex').slice(0, 16)}`;
}

type Listener = (shard: number | undefined) => void;

/** A client that can LISTEN: `pg`'s clients emit `notification` events. */
interface ListeningClient extends PgPoolClient {
  on(event: 'notification', listener: (message: { channel: string; payload?: string }) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/**
 * One LISTEN connection per source, opened on the first subscriber and closed after the last one leaves.
 * A dropped connection is re-opened with backoff; after every (re)connect, subscribers are told "anything
 * may be due", since notifications sent while nobody listened are lost.
 */
export class DueNotifications {
  readonly #pool: PgPool;
  readonly #channel: string;
  readonly #schema: string;
  readonly #onError: ((error: BatonError) => void) | undefined;
  readonly #listeners = new Set<Listener>();
  #client: PgPoolClient | undefined;
  #connecting = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #failures = 0;
  #closed = false;

  constructor(pool: PgPool, schema: string, onError: ((error: BatonError) => void) | undefined) {
    this.#pool = pool;
    this.#schema = schema;
    this.#channel = dueChannel(schema);
    this.#onError = onError;
  }

  get channel(): string {
    return this.#channel;
  }

  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener);
    if (!this.#client && !this.#connecting && !this.#retryTimer) void this.#connect();
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.#disconnect();
    };
  }

  close(): void {
    this.#closed = true;
    this.#listeners.clear();
    this.#disconnect();
  }

  async #connect(): Promise<void> {
    if (this.#closed || this.#listeners.size === 0) return;
    this.#connecting = true;
    let client: PgPoolClient | undefined;
    try {
      client = await this.#pool.connect();
      const listening = client as ListeningClient;
      listening.on('notification', (message) => {
        if (message.channel !== this.#channel) return;
        const shard = Number(message.payload);
        this.#emit(Number.isInteger(shard) ? shard : undefined);
      });
      listening.on('error', (error) => this.#dropped(listening, error));
      await client.query(`LISTEN "${this.#channel}"`);
      this.#connecting = false;
      if (this.#closed || this.#listeners.size === 0) {
        this.#release(client);
        return;
      }
      this.#client = client;
      this.#failures = 0;
      this.#emit(undefined);
    } catch (error) {
      this.#connecting = false;
      if (client) this.#release(client, error);
      this.#report(error);
      this.#scheduleRetry();
    }
  }

  #dropped(client: PgPoolClient, error: Error): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    this.#release(client, error);
    this.#report(error);
    this.#scheduleRetry();
  }

  #scheduleRetry(): void {
    if (this.#closed || this.#listeners.size === 0 || this.#retryTimer) return;
    const delay = backoffDelay(this.#failures++, { baseMs: 200, maxMs: 30_000 });
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      void this.#connect();
    }, delay);
    this.#retryTimer.unref();
  }

  #disconnect(): void {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    const client = this.#client;
    this.#client = undefined;
    if (!client) return;
    client.query(`UNLISTEN "${this.#channel}"`).then(
      () => this.#release(client),
      (error: unknown) => this.#release(client, error),
    );
  }

  #release(client: PgPoolClient, error?: unknown): void {
    try {
      client.release(error instanceof Error ? error : error === undefined ? undefined : true);
    } catch {
      // Already released after an error: nothing left to give back.
    }
  }

  #emit(shard: number | undefined): void {
    for (const listener of this.#listeners) {
      try {
        listener(shard);
      } catch (error) {
        this.#report(error);
      }
    }
  }

  #report(error: unknown): void {
    this.#onError?.(toBatonError(error, 'listen for due tasks', this.#schema));
  }
}
