import { type DynaliteServer, startDynalite } from '@baton/test-servers/dynalite';
import type { LockHarness } from '@baton/testkit';
import { afterAll, beforeAll } from 'vitest';
import type { DynamoLockProviderOptions, DynamoLockSession } from '../src/index.js';
import {
  breakableTransport,
  createTable,
  deleteItem,
  makeProvider,
  rawClient,
  readItem,
  uniqueTable,
} from './helpers.js';

/**
 * The conformance harness: one dynalite and table per test file, a provider per test. `breakTransport`
 * makes every request of that provider fail the way a refused connection does, from an SDK middleware
 * (cheaper than a proxy hop, which matters when the fuzz group saturates a small machine; the fault tests
 * cut real connections through a proxy).
 */
export function dynamoHarnessFactory(
  label: string,
  ttlMs: number,
  providerOptions: DynamoLockProviderOptions = {},
): () => Promise<LockHarness> {
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
    const provider = makeProvider(server.endpoint, table, { ttlMs, ...providerOptions });
    const transport = breakableTransport(provider.client);
    return {
      provider,
      sessionOptions: { ttlMs, lockDelayMs: 0 },
      inspect: async (key) => {
        const item = await readItem(direct, table, key);
        return item ? { holder: item.owner, fence: item.fence, waiters: item.waiters } : null;
      },
      crash: async (session) => (session as DynamoLockSession).abandon(),
      breakTransport: async () => {
        transport.broken = true;
        return async () => {
          transport.broken = false;
        };
      },
      deleteKey: (key) => deleteItem(direct, table, key),
      close: () => provider.close(),
    };
  };
}
