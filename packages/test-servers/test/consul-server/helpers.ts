import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { ManualClock } from '@baton/core';
import {
  type ConsulTestServer,
  type ConsulTestServerOptions,
  startConsulTestServer,
} from '@baton/test-servers/consul-server';
import Consul from 'consul';
import { afterEach } from 'vitest';

/** A raw HTTP answer. */
export interface RawResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** The body parsed as JSON (`undefined` when it is not JSON). */
  readonly json: unknown;
}

const started: Array<{ server: ConsulTestServer; consul?: Consul }> = [];

afterEach(async () => {
  const all = started.splice(0);
  for (const { consul } of all) consul?.destroy();
  await Promise.all(all.map(({ server }) => server.close()));
});

/** Starts a server closed automatically after the test. */
export async function startServer(options: ConsulTestServerOptions = {}): Promise<ConsulTestServer> {
  const server = await startConsulTestServer(options);
  started.push({ server });
  return server;
}

/** A `consul` npm client for `server`, destroyed after the test. */
export function client(server: ConsulTestServer, token?: string): Consul {
  const consul = new Consul({
    host: server.host,
    port: server.port,
    ...(token ? { defaults: { token } } : {}),
  });
  started.push({ server, consul });
  return consul;
}

/** A server on a {@link ManualClock} with fast TTLs, and its clock. */
export async function manualServer(
  options: ConsulTestServerOptions = {},
): Promise<{ server: ConsulTestServer; clock: ManualClock }> {
  const clock = new ManualClock();
  const server = await startServer({ sessionTtlMinMs: 100, clock, ...options });
  return { server, clock };
}

/** Sends a raw request; `body` objects are sent as JSON. */
export async function http(
  server: ConsulTestServer,
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<RawResponse> {
  const { body } = options;
  const payload =
    body === undefined
      ? undefined
      : typeof body === 'string' || body instanceof Uint8Array
        ? body
        : JSON.stringify(body);
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: options.headers,
    body: payload,
    signal: options.signal,
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** Creates a session through the HTTP API and returns its id. */
export async function createSession(
  server: ConsulTestServer,
  body: Record<string, unknown> = {},
): Promise<string> {
  const res = await http(server, 'PUT', '/v1/session/create', { body });
  if (res.status !== 200) throw new Error(`session create failed: ${res.status} ${res.text}`);
  return (res.json as { ID: string }).ID;
}

/** A fresh key under a random prefix. */
export function randomKey(name = 'lock'): string {
  return `test-${randomUUID().slice(0, 8)}/${name}`;
}

/** The `X-Consul-Index` header as a number. */
export function indexOf(res: RawResponse): number {
  return Number(res.headers.get('x-consul-index'));
}

/** A KV entry as the HTTP API returns it. */
export interface KvJson {
  LockIndex: number;
  Key: string;
  Flags: number;
  Value: string | null;
  Session?: string;
  CreateIndex: number;
  ModifyIndex: number;
}

/** Reads one entry through the HTTP API (`undefined` on 404). */
export async function readEntry(server: ConsulTestServer, key: string): Promise<KvJson | undefined> {
  const res = await http(server, 'GET', `/v1/kv/${key}`);
  if (res.status === 404) return undefined;
  return (res.json as KvJson[])[0];
}

/** Waits (real time) until `predicate` holds, polling every 5 ms. */
export async function until(predicate: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Base64 of a UTF-8 string. */
export function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

/** Sends `path` byte for byte (fetch would normalise `..` segments). */
export function rawRequest(
  server: ConsulTestServer,
  method: string,
  path: string,
  body?: string,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: server.host, port: server.port, method, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}
