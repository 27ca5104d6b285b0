import type { AddressInfo } from 'node:net';
import type { LockProvider } from '@baton/core';
import { checkDuration } from '@baton/core';
import { type PgPool, type PostgresTaskSource, retentionDurationBounds } from '@baton/source-postgres';
import { serve } from '@hono/node-server';
import { type ActionLogEntry, createApp } from './app.js';
import { loadAssets } from './assets.js';
import { TokenCheck } from './auth.js';
import { type ConsoleOptionsInput, consoleOptionsSchema } from './options.js';
import { consoleQueries } from './queries.js';
import { Refresher } from './snapshot.js';
import type { RetentionSettings } from './storage.js';

/** What {@link startConsole} needs besides its settings. */
export interface StartConsoleOptions extends ConsoleOptionsInput {
  /** The task source: details and retries go through it (retries take its fenced path). */
  source: PostgresTaskSource;
  /** Where the console's own read-only queries run (a pool: a snapshot reads in one transaction). */
  db: PgPool;
  /** The lock backend whose locks and leaders are shown; omit to show none. */
  locks?: LockProvider | undefined;
  /** Allows actions (with `Authorization: Bearer <token>`); without it the console is read-only. */
  token?: string | undefined;
  /**
   * The retention policy the workers apply (`--retain-done` / `--retain-dead`): the page shows how many
   * finished tasks it would remove now. Omit when retention is off.
   */
  retention?: RetentionSettings | undefined;
  /** Receives every action, allowed or denied. Default: one JSON line on stderr. */
  onAction?: (entry: ActionLogEntry) => void;
}

/** A console serving HTTP. */
export interface RunningConsole {
  /** `http://host:port/`. */
  readonly url: string;
  readonly port: number;
  readonly host: string;
  readonly readOnly: boolean;
  /** The shared refresh loop (its `refreshes` count is what the database paid). */
  readonly refresher: Refresher;
  /** Stops listening, ends the event streams and the refresh loop. Leaves source, pool and locks open. */
  close(): Promise<void>;
}

/** Starts the web console. See docs/console.md. */
export async function startConsole(options: StartConsoleOptions): Promise<RunningConsole> {
  const { source, db, locks, token, retention, onAction = logToStderr, ...rest } = options;
  checkRetention(retention);
  const settings = consoleOptionsSchema.parse(rest);
  const auth = new TokenCheck(token);
  const refresher = new Refresher({
    db,
    sql: consoleQueries(source.schema),
    locks,
    settings,
    readOnly: auth.readOnly,
    retention,
  });
  const closing = new AbortController();
  const app = createApp({
    source,
    db,
    sql: consoleQueries(source.schema),
    refresher,
    locks,
    auth,
    assets: await loadAssets(),
    onAction,
    closing: closing.signal,
  });
  const server = serve({ fetch: app.fetch, port: settings.port, hostname: settings.host });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closed: Promise<void> | undefined;
  return {
    url: `http://${shownHost}:${address.port}/`,
    port: address.port,
    host: address.address,
    readOnly: auth.readOnly,
    refresher,
    close() {
      closed ??= new Promise<void>((resolve) => {
        refresher.close();
        closing.abort();
        server.close(() => resolve());
        if ('closeAllConnections' in server) server.closeAllConnections();
      });
      return closed;
    },
  };
}

function logToStderr(entry: ActionLogEntry): void {
  process.stderr.write(`${JSON.stringify({ at: new Date().toISOString(), console: entry })}\n`);
}

/** The same bounds as the worker's policy (`retentionDurationBounds`). */
function checkRetention(retention: RetentionSettings | undefined): void {
  if (retention?.doneAfterMs !== undefined) {
    checkDuration('retention.doneAfterMs', retention.doneAfterMs, retentionDurationBounds.afterMs);
  }
  if (retention?.deadAfterMs !== undefined) {
    checkDuration('retention.deadAfterMs', retention.deadAfterMs, retentionDurationBounds.afterMs);
  }
}
