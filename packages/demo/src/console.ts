import { type RunningConsole, startConsole } from '@baton/console';
import type { LockProvider } from '@baton/core';
import type { PostgresTaskSource } from '@baton/source-postgres';
import type { Pool } from 'pg';
import type { EmbeddedLocks } from './embedded.js';

/** The web console of a demo run. */
export interface DemoConsole {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves `baton console` over the demo's database and lock backend, refreshing twice a second so the tasks
 * visibly move. Read-only unless BATON_CONSOLE_TOKEN is set, as the command.
 */
export async function startDemoConsole(options: {
  source: PostgresTaskSource;
  pool: Pool;
  locks: EmbeddedLocks;
  port: number | undefined;
}): Promise<DemoConsole> {
  const provider: LockProvider = await options.locks.provider();
  const ownsProvider = options.locks.backend !== 'memory';
  let running: RunningConsole;
  try {
    running = await startConsole({
      source: options.source,
      db: options.pool,
      locks: provider,
      refreshMs: 500,
      finishedCountMs: 1_000,
      ...(options.port !== undefined ? { port: options.port } : {}),
      token: process.env.BATON_CONSOLE_TOKEN || undefined,
    });
  } catch (error) {
    if (ownsProvider) await provider.close().catch(() => {});
    throw error;
  }
  return {
    url: running.url,
    close: async () => {
      await running.close();
      if (ownsProvider) await provider.close().catch(() => {});
    },
  };
}
