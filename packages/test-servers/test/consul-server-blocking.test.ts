import { describe, expect, it } from 'vitest';
import {
  client,
  createSession,
  http,
  indexOf,
  type KvJson,
  manualServer,
  randomKey,
  readEntry,
  startServer,
  until,
} from './consul-server/helpers.js';

describe('consul test server: blocking queries', () => {
  it('index 0 never blocks, even with a wait', async () => {
    const { server } = await manualServer();
    const key = randomKey();
    await http(server, 'PUT', `/v1/kv/${key}`, { body: 'x' });
    // On a manual clock nobody advances, a blocking query would hang forever.
    const res = await http(server, 'GET', `/v1/kv/${key}?index=0&wait=10m`);
    expect(res.status).toBe(200);
    expect((await http(server, 'GET', `/v1/kv/${randomKey()}?index=0&wait=10m`)).status).toBe(404);
  });

  it('returns at once when the result index already exceeds ?index', async () => {
    const { server } = await manualServer();
    const key = randomKey();
    await http(server, 'PUT', `/v1/kv/${key}`, { body: 'x' });
    const entry = await readEntry(server, key);
    const res = await http(server, 'GET', `/v1/kv/${key}?index=${entry!.ModifyIndex - 1}&wait=10m`);
    expect(indexOf(res)).toBe(entry!.ModifyIndex);
  });

  it('wakes on a change to the key and returns the new index', async () => {
    const server = await startServer();
    const key = randomKey();
    await http(server, 'PUT', `/v1/kv/${key}`, { body: 'v1' });
    const first = await http(server, 'GET', `/v1/kv/${key}`);
    const started = Date.now();
    const pending = http(server, 'GET', `/v1/kv/${key}?index=${indexOf(first)}&wait=30s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await http(server, 'PUT', `/v1/kv/${key}`, { body: 'v2' });
    const res = await pending;
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(indexOf(res)).toBeGreaterThan(indexOf(first));
    expect((res.json as KvJson[])[0]!.Value).toBe(Buffer.from('v2').toString('base64'));
  });

  it("keeps blocking through writes that leave the result unchanged, and through other keys' writes", async () => {
    const { server, clock } = await manualServer();
    const key = randomKey();
    await http(server, 'PUT', `/v1/kv/${key}`, { body: 'same' });
    const first = await http(server, 'GET', `/v1/kv/${key}`);
    let settled = false;
    const pending = http(server, 'GET', `/v1/kv/${key}?index=${indexOf(first)}&wait=1m`).finally(() => {
      settled = true;
    });
    await until(() => clock.pendingTimers > 0);
    await http(server, 'PUT', `/v1/kv/${randomKey()}`, { body: 'other' });
    await http(server, 'PUT', `/v1/kv/${key}`, { body: 'same' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(settled).toBe(false);
    await http(server, 'PUT', `/v1/kv/${key}`, { body: 'changed' });
    expect(indexOf(await pending)).toBeGreaterThan(indexOf(first));
  });

  it('returns on wait timeout with 200 and the unchanged index (a return is not a change)', async () => {
    const { server, clock } = await manualServer();
    const key = randomKey();
    await http(server, 'PUT', `/v1/kv/${key}`, { body: 'x' });
    const first = await http(server, 'GET', `/v1/kv/${key}`);
    let settled = false;
    const pending = http(server, 'GET', `/v1/kv/${key}?index=${indexOf(first)}&wait=1s`).finally(() => {
      settled = true;
    });
    await until(() => clock.pendingTimers > 0);
    await clock.advance(999);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(settled).toBe(false);
    // The wait gets up to wait/16 of jitter.
    await clock.advance(1_000 / 16 + 1);
    const res = await pending;
    expect(res.status).toBe(200);
    expect(indexOf(res)).toBe(indexOf(first));
    expect(res.json).toEqual(first.json);
  });

  it('caps ?wait at maxBlockingWaitMs', async () => {
    const { server, clock } = await manualServer({ maxBlockingWaitMs: 500 });
    const key = randomKey();
    await http(server, 'PUT', `/v1/kv/${key}`, { body: 'x' });
    const first = await http(server, 'GET', `/v1/kv/${key}`);
    const pending = http(server, 'GET', `/v1/kv/${key}?index=${indexOf(first)}&wait=10m`);
    await until(() => clock.pendingTimers > 0);
    await clock.advance(500 + 500 / 16 + 1);
    expect((await pending).status).toBe(200);
  });

  it('on a missing key blocks past unrelated writes and wakes when the key appears', async () => {
    const { server, clock } = await manualServer();
    const key = randomKey();
    const missing = await http(server, 'GET', `/v1/kv/${key}`);
    expect(missing.status).toBe(404);
    let settled = false;
    const pending = http(server, 'GET', `/v1/kv/${key}?index=${indexOf(missing)}&wait=1m`).finally(() => {
      settled = true;
    });
    await until(() => clock.pendingTimers > 0);
    await http(server, 'PUT', `/v1/kv/${randomKey()}`, { body: 'unrelated' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(settled).toBe(false);
    await http(server, 'PUT', `/v1/kv/${key}`, { body: 'here' });
    const res = await pending;
    expect(res.status).toBe(200);
    expect(indexOf(res)).toBe((await readEntry(server, key))!.ModifyIndex);
  });

  it("wakes a holder's watch when its session is invalidated", async () => {
    const server = await startServer();
    const key = randomKey();
    const id = await createSession(server, { LockDelay: 0 });
    await http(server, 'PUT', `/v1/kv/${key}?acquire=${id}`);
    const held = await http(server, 'GET', `/v1/kv/${key}?consistent`);
    const pending = http(server, 'GET', `/v1/kv/${key}?consistent&index=${indexOf(held)}&wait=30s`);
    await new Promise((resolve) => setTimeout(resolve, 30));
    await http(server, 'PUT', `/v1/session/destroy/${id}`);
    const [entry] = (await pending).json as KvJson[];
    expect(entry).not.toHaveProperty('Session');
  });

  it('blocks a recursive listing until something under the prefix changes, deletions included', async () => {
    const server = await startServer();
    const prefix = randomKey('dir');
    await http(server, 'PUT', `/v1/kv/${prefix}/a`, { body: 'a' });
    const listed = await http(server, 'GET', `/v1/kv/${prefix}/?recurse`);
    const pending = http(server, 'GET', `/v1/kv/${prefix}/?recurse&index=${indexOf(listed)}&wait=30s`);
    await new Promise((resolve) => setTimeout(resolve, 30));
    await http(server, 'DELETE', `/v1/kv/${prefix}/a`);
    const res = await pending;
    expect(res.status).toBe(404);
    expect(indexOf(res)).toBeGreaterThan(indexOf(listed));
  });

  it('serves blocking gets to the npm client (index + wait)', async () => {
    const server = await startServer();
    const consul = client(server);
    const key = randomKey();
    await consul.kv.set(key, 'one');
    const first = await consul.kv.get(key);
    const query = { key, index: String(first!.ModifyIndex), wait: '20s' };
    const pending = consul.kv.get(query);
    await new Promise((resolve) => setTimeout(resolve, 30));
    await consul.kv.set(key, 'two');
    const next = await pending;
    expect(next!.Value).toBe('two');
    expect(next!.ModifyIndex).toBeGreaterThan(first!.ModifyIndex);
  });

  it('blocks session info until the session changes', async () => {
    const server = await startServer();
    const id = await createSession(server);
    const info = await http(server, 'GET', `/v1/session/info/${id}`);
    const pending = http(server, 'GET', `/v1/session/info/${id}?index=${indexOf(info)}&wait=30s`);
    await new Promise((resolve) => setTimeout(resolve, 30));
    await http(server, 'PUT', `/v1/session/destroy/${id}`);
    const res = await pending;
    expect(res.json).toEqual([]);
    expect(indexOf(res)).toBeGreaterThan(indexOf(info));
  });

  it('releases a blocked request when the client goes away, leaving no timer behind', async () => {
    const { server, clock } = await manualServer();
    const key = randomKey();
    await http(server, 'PUT', `/v1/kv/${key}`, { body: 'x' });
    const first = await http(server, 'GET', `/v1/kv/${key}`);
    const abort = new AbortController();
    const pending = http(server, 'GET', `/v1/kv/${key}?index=${indexOf(first)}&wait=1m`, {
      signal: abort.signal,
    }).catch((error: unknown) => error);
    await until(() => clock.pendingTimers > 0);
    abort.abort();
    await pending;
    await until(() => clock.pendingTimers === 0);
  });
});
