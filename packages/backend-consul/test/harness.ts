import { randomUUID } from 'node:crypto';
import type { LockSession } from '@baton/core';
import { type ConsulTestServer, startConsulTestServer } from '@baton/test-servers/consul-server';
import { type FaultProxy, startFaultProxy } from '@baton/test-servers/fault-proxy';
import type { LockHarness } from '@baton/testkit';
import {
  ConsulLockProvider,
  type ConsulLockProviderOptions,
  type ConsulSession,
  fenceOf,
  KeyCodec,
  type KvEntry,
  LINE_SEGMENT,
} from '../src/index.js';

/**
 * When `CONSUL_HTTP_ADDR` is set, the tests run against that agent (with `CONSUL_HTTP_TOKEN`), using
 * Consul's real 10 s TTL floor; tests that need the test server's knobs (faults, request counters, short
 * TTLs) are skipped. Otherwise each test file starts the in-process Consul-compatible test server.
 */
export const REAL_AGENT = process.env.CONSUL_HTTP_ADDR
  ? normaliseAddress(process.env.CONSUL_HTTP_ADDR)
  : undefined;
const REAL_TOKEN = process.env.CONSUL_HTTP_TOKEN || undefined;

/** Session TTL the tests use: Consul's floor on a real agent, short on the test server. */
export const TEST_TTL_MS = REAL_AGENT ? 10_000 : 1_000;

/** Where the tests talk to. */
export interface ConsulEnv {
  /** The agent's address. */
  readonly url: string;
  readonly token: string | undefined;
  /** The in-process test server; `undefined` against a real agent. */
  readonly server: ConsulTestServer | undefined;
  close(): Promise<void>;
}

/** Starts the test server (or attaches to the real agent). */
export async function startConsulEnv(options: { aclTokens?: string[] } = {}): Promise<ConsulEnv> {
  if (REAL_AGENT) return { url: REAL_AGENT, token: REAL_TOKEN, server: undefined, close: async () => {} };
  const server = await startConsulTestServer({ sessionTtlMinMs: 100, ...options });
  return { url: server.url, token: options.aclTokens?.[0], server, close: () => server.close() };
}

/** The test server of `env`, for tests that only run against it. */
export function testServer(env: ConsulEnv): ConsulTestServer {
  if (!env.server) throw new Error('this test needs the in-process Consul test server');
  return env.server;
}

/** A fresh key prefix, so tests never see each other's keys (also on a shared real agent). */
export function freshPrefix(): string {
  return `baton-test/${randomUUID().slice(0, 8)}/`;
}

/** A provider on `env` with test-friendly defaults (short TTL, no lock-delay, a fresh prefix). */
export function testProvider(env: ConsulEnv, options: ConsulLockProviderOptions = {}): ConsulLockProvider {
  return new ConsulLockProvider({
    address: env.url,
    ...(env.token ? { token: env.token } : {}),
    prefix: freshPrefix(),
    ttlMs: TEST_TTL_MS,
    minTtlMs: REAL_AGENT ? 10_000 : 100,
    lockDelayMs: 0,
    requestTimeoutMs: REAL_AGENT ? 5_000 : 2_000,
    ...options,
  });
}

/** Reads a key straight from the agent, bypassing the provider. */
export async function rawEntry(env: ConsulEnv, consulKey: string): Promise<KvEntry | undefined> {
  const response = await fetch(`${env.url}/v1/kv/${encodeURI(consulKey)}?consistent`, {
    headers: headers(env),
  });
  if (response.status === 404) return undefined;
  if (!response.ok) throw new Error(`GET ${consulKey}: HTTP ${response.status} ${await response.text()}`);
  const [entry] = (await response.json()) as Array<Omit<KvEntry, 'Value'> & { Value: string | null }>;
  if (!entry) return undefined;
  return {
    ...entry,
    Value: entry.Value === null ? null : Buffer.from(entry.Value, 'base64').toString('utf8'),
  };
}

/**
 * The sessions waiting in a lock key's line, read straight from the agent: the places under
 * `<key>/.wait/` whose session still holds them, in `CreateIndex` order.
 */
export async function rawLine(env: ConsulEnv, consulKey: string): Promise<string[]> {
  const response = await fetch(`${env.url}/v1/kv/${encodeURI(consulKey + LINE_SEGMENT)}?recurse&consistent`, {
    headers: headers(env),
  });
  if (response.status === 404) return [];
  if (!response.ok)
    throw new Error(`GET line of ${consulKey}: HTTP ${response.status} ${await response.text()}`);
  const entries = (await response.json()) as Array<{ Session?: string; CreateIndex: number }>;
  return entries
    .filter((e) => e.Session)
    .sort((a, b) => a.CreateIndex - b.CreateIndex)
    .map((e) => e.Session!);
}

/** Deletes a key straight at the agent (an operator's `consul kv delete`). */
export async function rawDelete(env: ConsulEnv, consulKey: string): Promise<void> {
  const response = await fetch(`${env.url}/v1/kv/${encodeURI(consulKey)}`, {
    method: 'DELETE',
    headers: headers(env),
  });
  if (!response.ok) throw new Error(`DELETE ${consulKey}: HTTP ${response.status}`);
}

/** Destroys a session behind the provider's back (an operator's `consul` action, or a failed node). */
export async function rawDestroySession(env: ConsulEnv, id: string): Promise<void> {
  const response = await fetch(`${env.url}/v1/session/destroy/${id}`, {
    method: 'PUT',
    headers: headers(env),
  });
  if (!response.ok) throw new Error(`destroy session: HTTP ${response.status}`);
}

function headers(env: ConsulEnv): Record<string, string> {
  return env.token ? { 'x-consul-token': env.token } : {};
}

/**
 * The conformance suite's harness. Against the test server, `breakTransport` answers every request with
 * 503 "No cluster leader"; against a real agent the provider talks through a TCP proxy that resets every
 * connection instead.
 */
export async function consulHarness(
  env: ConsulEnv,
  options: ConsulLockProviderOptions = {},
): Promise<LockHarness> {
  const proxy: FaultProxy | undefined = env.server ? undefined : await startFaultProxy(env.url);
  const provider = testProvider(env, { ...(proxy ? { address: proxy.url } : {}), ...options });
  const codec = new KeyCodec(provider.prefix);
  return {
    provider,
    sessionOptions: { ttlMs: TEST_TTL_MS, lockDelayMs: 0 },
    inspect: async (key) => {
      const entry = await rawEntry(env, codec.encode(key));
      const waiters = await rawLine(env, codec.encode(key));
      if (!entry) return waiters.length > 0 ? { holder: undefined, fence: 0, waiters } : null;
      return { holder: entry.Session || undefined, fence: fenceOf(entry), waiters };
    },
    crash: async (session: LockSession) => (session as ConsulSession).abandon(),
    breakTransport: async () => {
      if (env.server) {
        const server = env.server;
        server.faults.failNext(1_000_000_000, { status: 503 });
        return async () => server.faults.clear();
      }
      proxy?.setMode('reset');
      return async () => proxy?.setMode('pass');
    },
    deleteKey: (key) => rawDelete(env, codec.encode(key)),
    close: async () => {
      await provider.close();
      await proxy?.close();
    },
  };
}

function normaliseAddress(address: string): string {
  const text = address.trim().replace(/\/+$/, '');
  return /^[a-z]+:\/\//i.test(text) ? text : `http://${text}`;
}
