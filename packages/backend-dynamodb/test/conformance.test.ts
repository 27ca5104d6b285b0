import { type LockHarness, lockProviderSuite } from '@baton/testkit';
import { type DynaliteServer, startDynalite } from '@baton/testkit/dynalite';
import { afterAll, beforeAll, it } from 'vitest';
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

const TTL_MS = 1_000;
const table = uniqueTable('suite');
let server: DynaliteServer;
let raw: ReturnType<typeof rawClient>;

beforeAll(async () => {
  server = await startDynalite();
  raw = rawClient(server.endpoint);
  await createTable(raw, table);
});

afterAll(async () => {
  raw?.destroy();
  await server?.close();
});

async function harness(): Promise<LockHarness> {
  const proxy = await FaultProxy.start(server.endpoint);
  const provider = makeProvider(proxy.endpoint, table, { ttlMs: TTL_MS });
  return {
    provider,
    sessionOptions: { ttlMs: TTL_MS, lockDelayMs: 0 },
    inspect: async (key) => {
      const item = await readItem(raw, table, key);
      return item ? { holder: item.owner, fence: item.fence } : null;
    },
    crash: async (session) => (session as DynamoLockSession).abandon(),
    breakTransport: async () => {
      proxy.broken = true;
      return async () => {
        proxy.broken = false;
      };
    },
    deleteKey: (key) => deleteItem(raw, table, key),
    close: async () => {
      await provider.close();
      await proxy.close();
    },
  };
}

// A crashed holder's key is taken once a contender has seen its record unchanged for the lease duration plus
// a tenth (the default margin); the contender's first look comes up to one polling interval after the crash.
lockProviderSuite(it, harness, {
  expiryBoundMs: TTL_MS * 1.1 + TTL_MS / 2,
  lockDelayMs: 300,
  granularityMs: 50,
});
