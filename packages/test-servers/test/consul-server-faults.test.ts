import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Consul from 'consul';
import { describe, expect, it } from 'vitest';
import {
  b64,
  client,
  createSession,
  http,
  manualServer,
  randomKey,
  readEntry,
  startServer,
  until,
} from './consul-server/helpers.js';

describe('consul test server: fault injection', () => {
  it('failNext fails the next N requests with 503 "No cluster leader" by default, then recovers', async () => {
    const server = await startServer();
    server.faults.failNext(2);
    expect(await http(server, 'GET', '/v1/status/leader')).toMatchObject({
      status: 503,
      text: 'No cluster leader',
    });
    expect((await http(server, 'GET', '/v1/session/list')).status).toBe(503);
    expect((await http(server, 'GET', '/v1/session/list')).status).toBe(200);
  });

  it('failNext matches pathPrefix and method, with a custom status and body', async () => {
    const server = await startServer();
    const consul = client(server);
    const { ID } = await consul.session.create();
    server.faults.failNext(1, { status: 500, pathPrefix: '/v1/session/renew', method: 'PUT', body: 'boom' });
    server.faults.failNext(1, { status: 429 });
    expect((await http(server, 'GET', '/v1/session/list')).status).toBe(429);
    const error = await consul.session.renew(ID).then(
      () => undefined,
      (e: unknown) => e as { statusCode: number; message: string },
    );
    expect(error).toMatchObject({ statusCode: 500, message: 'boom' });
    expect((await http(server, 'PUT', `/v1/session/renew/${ID}`)).status).toBe(200);
  });

  it('failNext with afterProcessing applies the write but loses the answer', async () => {
    const server = await startServer();
    const key = randomKey();
    const id = await createSession(server);
    server.faults.failNext(1, { pathPrefix: '/v1/kv', afterProcessing: true });
    expect((await http(server, 'PUT', `/v1/kv/${key}?acquire=${id}`)).status).toBe(503);
    expect(await readEntry(server, key)).toMatchObject({ Session: id });
  });

  it('setLatency delays every response by the configured time', async () => {
    const server = await startServer();
    server.faults.setLatency(150);
    const started = performance.now();
    expect((await http(server, 'GET', '/v1/status/leader')).status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    server.faults.setLatency(0);
    const fast = performance.now();
    await http(server, 'GET', '/v1/status/leader');
    expect(performance.now() - fast).toBeLessThan(140);
  });

  it('pause holds requests (connections still accepted) until resume', async () => {
    const server = await startServer();
    server.faults.pause();
    let answered = false;
    const pending = http(server, 'PUT', `/v1/kv/${randomKey()}`, { body: 'x' }).then((res) => {
      answered = true;
      return res;
    });
    await until(() => server.requests.total() === 1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(answered).toBe(false);
    server.faults.resume();
    expect((await pending).status).toBe(200);
  });

  it('failNodeCheck invalidates every session bound to serfHealth, at one new index, releasing their keys', async () => {
    const server = await startServer();
    const key = randomKey();
    const bound = await createSession(server, { LockDelay: 0 });
    const unbound = await createSession(server, { Checks: [] });
    await http(server, 'PUT', `/v1/kv/${key}?acquire=${bound}`);
    server.faults.failNodeCheck();
    expect((await http(server, 'GET', `/v1/session/info/${bound}`)).json).toEqual([]);
    expect((await http(server, 'GET', `/v1/session/info/${unbound}`)).json).toHaveLength(1);
    expect(await readEntry(server, key)).not.toHaveProperty('Session');
    const health = (await http(server, 'GET', '/v1/health/node/baton-test-node')).json as Array<{
      Status: string;
    }>;
    expect(health[0]!.Status).toBe('critical');
    server.faults.restoreNodeCheck();
    expect((await http(server, 'PUT', '/v1/session/create')).status).toBe(200);
    expect(server.history().at(-1)).toMatchObject({ key, session: bound, end: 'invalidated' });
  });

  it('leaderElection answers 500 "No cluster leader", serves ?stale reads, and resets TTL timers', async () => {
    const { server, clock } = await manualServer();
    const key = randomKey();
    const id = await createSession(server, { TTL: '1s' });
    await http(server, 'PUT', `/v1/kv/${key}`, { body: 'x' });
    await clock.advance(1_500);
    server.faults.leaderElection({ durationMs: 1_000 });
    expect(await http(server, 'GET', `/v1/kv/${key}`)).toMatchObject({
      status: 500,
      text: 'No cluster leader',
    });
    expect(await http(server, 'PUT', `/v1/session/renew/${id}`)).toMatchObject({
      status: 500,
      text: 'No cluster leader',
    });
    expect((await http(server, 'GET', '/v1/status/leader')).json).toBe('');
    await clock.advance(400);
    const stale = await http(server, 'GET', `/v1/kv/${key}?stale`);
    expect(stale.status).toBe(200);
    expect(stale.headers.get('x-consul-knownleader')).toBe('false');
    expect(Number(stale.headers.get('x-consul-lastcontact'))).toBe(400);
    // The old timer would have fired at 2s; the election cleared it.
    await clock.advance(600);
    expect((await http(server, 'GET', '/v1/status/leader')).json).toBe('127.0.0.1:8300');
    expect((await http(server, 'GET', `/v1/session/info/${id}`)).json).toHaveLength(1);
    // The new leader gives the session a full TTL × 2 from the end of the election.
    await clock.advance(1_999);
    expect((await http(server, 'GET', `/v1/session/info/${id}`)).json).toHaveLength(1);
    await clock.advance(1);
    expect((await http(server, 'GET', `/v1/session/info/${id}`)).json).toEqual([]);
  });

  it('clear removes every fault at once', async () => {
    const { server } = await manualServer();
    server.faults.failNext(5);
    server.faults.failNodeCheck();
    server.faults.leaderElection({ durationMs: 60_000 });
    server.faults.setLatency(10_000);
    server.faults.pause();
    server.faults.clear();
    expect((await http(server, 'PUT', '/v1/session/create')).status).toBe(200);
  });
});

describe('consul test server: ACL', () => {
  const token = 'secret-token';

  it('answers unknown tokens with 403 "ACL not found" and no token with 403 "Permission denied"', async () => {
    const server = await startServer({ aclTokens: [token] });
    const key = randomKey();
    expect(
      await http(server, 'GET', `/v1/kv/${key}`, { headers: { 'X-Consul-Token': 'wrong' } }),
    ).toMatchObject({
      status: 403,
      text: 'ACL not found',
    });
    expect(await http(server, 'PUT', `/v1/kv/${key}`, { body: 'x' })).toMatchObject({
      status: 403,
      text: 'Permission denied',
    });
    expect(await http(server, 'PUT', '/v1/session/create')).toMatchObject({
      status: 403,
      text: 'Permission denied',
    });
    expect(
      await http(server, 'PUT', '/v1/session/renew/x', { headers: { 'X-Consul-Token': 'wrong' } }),
    ).toMatchObject({
      status: 404,
    });
    const unknownTxn = await http(server, 'PUT', '/v1/txn', {
      headers: { 'X-Consul-Token': 'wrong' },
      body: [{ KV: { Verb: 'set', Key: key } }],
    });
    expect(unknownTxn).toMatchObject({ status: 403, text: 'ACL not found' });
  });

  it('accepts the token from X-Consul-Token, ?token= and Authorization: Bearer, and from the npm client', async () => {
    const server = await startServer({ aclTokens: [token] });
    const key = randomKey();
    expect(
      (await http(server, 'PUT', `/v1/kv/${key}`, { body: 'x', headers: { 'X-Consul-Token': token } }))
        .status,
    ).toBe(200);
    expect((await http(server, 'GET', `/v1/kv/${key}?token=${token}`)).status).toBe(200);
    expect(
      (await http(server, 'GET', `/v1/kv/${key}`, { headers: { Authorization: `Bearer ${token}` } })).status,
    ).toBe(200);
    const consul = client(server, token);
    const { ID } = await consul.session.create();
    expect(await consul.kv.set({ key, value: 'y', acquire: ID })).toBe(true);
    const anonymous = client(server);
    await expect(anonymous.kv.get(key)).rejects.toMatchObject({
      statusCode: 403,
      message: expect.stringMatching(/Permission denied$/),
    });
  });

  it('filters listings for the anonymous token instead of failing, and needs no token for /v1/status', async () => {
    const server = await startServer({ aclTokens: [token] });
    const prefix = randomKey('acl');
    await http(server, 'PUT', `/v1/kv/${prefix}/a?token=${token}`, { body: 'x' });
    await http(server, 'PUT', `/v1/session/create?token=${token}`);
    const list = await http(server, 'GET', `/v1/kv/${prefix}/?recurse`);
    expect(list.status).toBe(404);
    expect(list.headers.get('x-consul-results-filtered-by-acls')).toBe('true');
    expect((await http(server, 'GET', '/v1/session/list')).json).toEqual([]);
    expect((await http(server, 'GET', '/v1/status/leader')).status).toBe(200);
    const txn = await http(server, 'PUT', '/v1/txn', { body: [{ KV: { Verb: 'set', Key: `${prefix}/b` } }] });
    expect(txn.status).toBe(409);
    expect(txn.json).toEqual({ Results: null, Errors: [{ OpIndex: 0, What: 'Permission denied' }] });
  });
});

describe('consul test server: counters, history, peek', () => {
  it('counts requests per "METHOD /v1/path-pattern", including faulted ones, and logs them', async () => {
    const server = await startServer();
    const consul = client(server);
    const key = randomKey();
    const { ID } = await consul.session.create();
    await consul.session.renew(ID);
    server.faults.failNext(1, { pathPrefix: '/v1/session/renew' });
    await consul.session.renew(ID).catch(() => undefined);
    await consul.kv.get(key);
    await consul.kv.set(key, 'v');
    await http(server, 'PUT', '/v1/txn', { body: [{ KV: { Verb: 'get', Key: key } }] });
    expect(server.requests.count('PUT /v1/session/create')).toBe(1);
    expect(server.requests.count('PUT /v1/session/renew')).toBe(2);
    expect(server.requests.count('GET /v1/kv')).toBe(1);
    expect(server.requests.count('put /v1/kv/')).toBe(1);
    expect(server.requests.count('PUT /v1/txn')).toBe(1);
    expect(server.requests.total()).toBe(6);
    expect(server.requests.log().map((r) => r.path)).toContain(`/v1/session/renew/${ID}`);
    expect(server.requests.log()[0]).toMatchObject({ method: 'PUT', path: '/v1/session/create' });
    server.requests.reset();
    expect(server.requests.total()).toBe(0);
    expect(server.requests.count('PUT /v1/txn')).toBe(0);
  });

  it('records acquisitions with their fencing ModifyIndex and how each ended', async () => {
    const { server, clock } = await manualServer();
    const released = randomKey('released');
    const deleted = randomKey('deleted');
    const expired = randomKey('expired');
    const a = await createSession(server, { LockDelay: 0 });
    const b = await createSession(server, { TTL: '1s', LockDelay: 0 });
    await http(server, 'PUT', `/v1/kv/${released}?acquire=${a}`);
    await http(server, 'PUT', `/v1/kv/${released}?acquire=${a}`);
    const first = await readEntry(server, released);
    await clock.advance(10);
    await http(server, 'PUT', `/v1/kv/${released}?release=${a}`);
    await http(server, 'PUT', `/v1/kv/${deleted}?acquire=${a}`);
    await http(server, 'DELETE', `/v1/kv/${deleted}`);
    await http(server, 'PUT', `/v1/kv/${expired}?acquire=${b}`);
    await clock.advance(2_000);
    const history = server.history();
    expect(history).toHaveLength(3);
    expect(history[0]).toEqual({
      key: released,
      session: a,
      modifyIndex: first!.ModifyIndex,
      lockIndex: 1,
      acquiredAt: 0,
      endedAt: 10,
      end: 'released',
    });
    expect(history[1]).toMatchObject({ key: deleted, end: 'deleted' });
    // b's TTL timer started when b was created, at 0: TTL × 2 later it expired.
    expect(history[2]).toMatchObject({ key: expired, session: b, end: 'invalidated', endedAt: 2_000 });
  });

  it('getEntry peeks at committed state with a decoded value', async () => {
    const server = await startServer();
    const key = randomKey();
    const id = await createSession(server);
    expect(server.getEntry(key)).toBeUndefined();
    await http(server, 'PUT', `/v1/kv/${key}?acquire=${id}&flags=4`, { body: 'héllo' });
    const entry = server.getEntry(key);
    expect(entry).toEqual({
      Key: key,
      Value: 'héllo',
      Flags: 4,
      Session: id,
      LockIndex: 1,
      CreateIndex: entry!.ModifyIndex,
      ModifyIndex: (await readEntry(server, key))!.ModifyIndex,
    });
    expect((await readEntry(server, key))!.Value).toBe(b64('héllo'));
  });
});

describe('consul test server: TLS', () => {
  it('serves HTTPS to a client that trusts the certificate through a CA file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'consul-tls-'));
    try {
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-keyout',
          join(dir, 'key.pem'),
          '-out',
          join(dir, 'cert.pem'),
          '-days',
          '1',
          '-subj',
          '/CN=127.0.0.1',
          '-addext',
          'subjectAltName=IP:127.0.0.1',
        ],
        { stdio: 'ignore' },
      );
      const cert = readFileSync(join(dir, 'cert.pem'));
      const server = await startServer({ tls: { cert, key: readFileSync(join(dir, 'key.pem')) } });
      expect(server.url).toBe(`https://127.0.0.1:${server.port}`);
      const agent = new Agent({ ca: cert, keepAlive: true });
      const consul = new Consul({ host: server.host, port: server.port, secure: true, agent });
      try {
        const { ID } = await consul.session.create();
        expect(await consul.kv.set({ key: randomKey(), value: 'tls', acquire: ID })).toBe(true);
      } finally {
        agent.destroy();
      }
      const untrusted = new Consul({ host: server.host, port: server.port, secure: true });
      await expect(untrusted.status.leader()).rejects.toThrow(/self[- ]signed/i);
      untrusted.destroy();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
