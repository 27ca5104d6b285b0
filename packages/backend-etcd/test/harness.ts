import { randomBytes } from 'node:crypto';
import { type EtcdServer, etcdAvailable, startEtcd } from '@baton/test-servers/etcd';
import { startFaultProxy } from '@baton/test-servers/fault-proxy';
import type { LockHarness } from '@baton/testkit';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll } from 'vitest';
import {
  EtcdKeys,
  EtcdLockProvider,
  type EtcdLockProviderOptions,
  type EtcdSession,
  etcdConfigSchema,
} from '../src/index.js';

/** True when the etcd binary is there; otherwise warns (or, with `CI` set, throws) once per file. */
export const haveEtcd = etcdAvailable('@baton/backend-etcd tests');

/** A fresh key prefix per provider, so tests never see each other's keys. */
export function uniquePrefix(label: string): string {
  return `baton-test/${label}-${randomBytes(4).toString('hex')}/`;
}

/** One etcd server per test file (started in `beforeAll`, stopped in `afterAll`), and a direct client. */
export function etcdServer(): { server: () => EtcdServer; raw: () => Etcd3 } {
  let server: EtcdServer | undefined;
  let raw: Etcd3 | undefined;
  beforeAll(async () => {
    server = await startEtcd();
    raw = new Etcd3({ hosts: server.endpoint });
  });
  afterAll(async () => {
    raw?.close();
    await server?.close();
  });
  return {
    server: () => {
      if (!server) throw new Error('etcd not started');
      return server;
    },
    raw: () => {
      if (!raw) throw new Error('etcd not started');
      return raw;
    },
  };
}

/** A provider on `endpoint` with the schema's defaults and the given settings. */
export function makeProvider(
  endpoint: string,
  settings: Record<string, unknown>,
  extra: Partial<EtcdLockProviderOptions> = {},
): EtcdLockProvider {
  return new EtcdLockProvider({ ...etcdConfigSchema.parse({ endpoints: endpoint, ...settings }), ...extra });
}

/**
 * The conformance harness: one etcd per test file, a provider per test behind its own TCP proxy, so that
 * `breakTransport` resets that provider's connections (and refuses new ones) while the server runs on.
 */
export function etcdHarnessFactory(label: string, ttlMs: number): () => Promise<LockHarness> {
  const etcd = etcdServer();
  return async () => {
    const proxy = await startFaultProxy(etcd.server().endpoint);
    const prefix = uniquePrefix(label);
    const keys = new EtcdKeys(prefix);
    const provider = makeProvider(proxy.url, { prefix, ttlMs, lockDelayMs: 0, requestTimeoutMs: 2_000 });
    const raw = etcd.raw();
    return {
      provider,
      sessionOptions: { ttlMs, lockDelayMs: 0 },
      inspect: async (key) => {
        const kv = (await raw.kv.range({ key: keys.lock(key) })).kvs[0];
        const line = keys.lineRange(key);
        const places = (await raw.kv.range({ key: line.from, range_end: line.to })).kvs;
        const waiters = places
          .sort((x, y) => Number(x.create_revision) - Number(y.create_revision))
          .map((place) => BigInt(place.lease).toString(16));
        if (!kv && waiters.length === 0) return null;
        return {
          holder: kv ? BigInt(kv.lease).toString(16) : undefined,
          fence: kv ? Number(kv.create_revision) : 0,
          waiters,
        };
      },
      crash: async (session) => (session as EtcdSession).abandon(),
      breakTransport: async () => {
        proxy.setMode('reset');
        return async () => proxy.setMode('pass');
      },
      deleteKey: async (key) => {
        await raw.kv.deleteRange({ key: keys.lock(key) });
      },
      close: async () => {
        await provider.close();
        await proxy.close();
      },
    };
  };
}
