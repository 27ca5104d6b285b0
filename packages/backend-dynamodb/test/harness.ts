import type { LockHarness } from '@baton/testkit';
import { type DynaliteServer, startDynalite } from '@baton/testkit/dynalite';
import { afterAll, beforeAll } from 'vitest';
import type { DynamoLockSession } from '../src/index.js';
import {
  createTable,
  deleteItem,
  FaultProxy,
  makeProvider,
  rawClient,
  readItem,
  uniqueTable,
} from './helpers.js';

/**
 * The conformance harness: one dynalite and table per test file, and per test a provider behind its own
 * fault proxy (so `breakTransport` cuts only that provider's connections).
 */
export function dynamoHarnessFactory(label: string, ttlMs: number): () => Promise<LockHarness> {
  const table = uniqueTable(label);
  let server: DynaliteServer | undefined;
  let raw: ReturnType<typeof rawClient> | undefined;
  beforeAll(async () => {
    server = await startDynalite();
    raw = rawClient(server.endpoint);
    await createTable(raw, table);
  });
  afterAll(async () => {
    raw?.destroy();
    await server?.close();
  });
  return async () => {
    if (!server || !raw) throw new Error('dynalite not started');
    const direct = raw;
    const proxy = await FaultProxy.start(server.endpoint);
    const provider = makeProvider(proxy.endpoint, table, { ttlMs });
    return {
      provider,
      sessionOptions: { ttlMs, lockDelayMs: 0 },
      inspect: async (key) => {
        const item = await readItem(direct, table, key);
        return item ? { holder: item.owner, fence: item.fence } : null;
      },
      crash: async (session) => (session as DynamoLockSession).abandon(),
      breakTransport: async () => {
        proxy.broken = true;
        return async () => {
          proxy.broken = false;
        };
      },
      deleteKey: (key) => deleteItem(direct, table, key),
      close: async () => {
        await provider.close();
        await proxy.close();
      },
    };
  };
}
