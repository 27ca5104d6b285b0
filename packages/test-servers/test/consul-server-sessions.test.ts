import { describe, expect, it } from 'vitest';
import {
  client,
  createSession,
  http,
  manualServer,
  randomKey,
  readEntry,
  startServer,
} from './consul-server/helpers.js';

interface SessionJson {
  ID: string;
  Name: string;
  Node: string;
  LockDelay: number;
  Behavior: string;
  TTL: string;
  NodeChecks: string[] | null;
  ServiceChecks: unknown;
  Checks?: string[];
  CreateIndex: number;
  ModifyIndex: number;
}

describe('consul test server: session create', () => {
  it('applies Consul defaults (agent node, serfHealth, 15s lock-delay, release, no TTL)', async () => {
    const server = await startServer();
    const consul = client(server);
    const { ID } = await consul.session.create();
    expect(ID).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const info = (await http(server, 'GET', `/v1/session/info/${ID}`)).json as SessionJson[];
    expect(info).toHaveLength(1);
    expect(info[0]).toEqual({
      ID,
      Name: '',
      Node: 'baton-test-node',
      LockDelay: 15_000_000_000,
      Behavior: 'release',
      TTL: '',
      NodeChecks: ['serfHealth'],
      ServiceChecks: null,
      CreateIndex: info[0]!.CreateIndex,
      ModifyIndex: info[0]!.CreateIndex,
    });
    expect(info[0]).not.toHaveProperty('Checks');
  });

  it('takes name, ttl, behavior and lockdelay from the npm client', async () => {
    const server = await startServer({ sessionTtlMinMs: 200 });
    const consul = client(server);
    const { ID } = await consul.session.create({
      name: 'worker-1',
      ttl: '15s',
      behavior: 'delete',
      lockdelay: '2s',
    });
    const info = (await consul.session.info(ID)) as unknown as SessionJson;
    expect(info).toMatchObject({
      Name: 'worker-1',
      TTL: '15s',
      Behavior: 'delete',
      LockDelay: 2_000_000_000,
    });
  });

  it.each([
    [5, 5_000_000_000],
    [999, 999_000_000_000],
    [1000, 1000],
    [15_000_000_000, 15_000_000_000],
    ['15s', 15_000_000_000],
    ['15000ms', 15_000_000_000],
    ['500ns', 500_000_000_000],
    [0, 0],
    ['0s', 0],
  ])('parses LockDelay %j as %d ns (numbers below 1000 are seconds)', async (lockDelay, expected) => {
    const server = await startServer();
    const id = await createSession(server, { LockDelay: lockDelay });
    const [info] = (await http(server, 'GET', `/v1/session/info/${id}`)).json as SessionJson[];
    expect(info!.LockDelay).toBe(expected);
  });

  it('matches body fields case-insensitively, as Go does', async () => {
    const server = await startServer({ sessionTtlMinMs: 100 });
    const id = await createSession(server, { name: 'lower', ttl: '1s', lockdelay: 3 });
    const [info] = (await http(server, 'GET', `/v1/session/info/${id}`)).json as SessionJson[];
    expect(info).toMatchObject({ Name: 'lower', TTL: '1s', LockDelay: 3_000_000_000 });
  });

  it('rejects undecodable bodies with 400 "Request decode failed: ..."', async () => {
    const server = await startServer();
    const bad = await http(server, 'PUT', '/v1/session/create', { body: '{"Name": x}' });
    expect(bad.status).toBe(400);
    expect(bad.text).toBe("Request decode failed: invalid character 'x' looking for beginning of value");
    const truncated = await http(server, 'PUT', '/v1/session/create', { body: '{"Name": "a"' });
    expect(truncated).toMatchObject({ status: 400, text: 'Request decode failed: unexpected EOF' });
    const badDelay = await http(server, 'PUT', '/v1/session/create', { body: { LockDelay: 'soon' } });
    expect(badDelay).toMatchObject({
      status: 400,
      text: 'Request decode failed: time: invalid duration "soon"',
    });
    const wrongType = await http(server, 'PUT', '/v1/session/create', { body: { Name: 5 } });
    expect(wrongType.status).toBe(400);
    expect(wrongType.text).toMatch(
      /^Request decode failed: json: cannot unmarshal number 5 into Go struct field/,
    );
  });

  it('accepts an empty body and an empty object', async () => {
    const server = await startServer();
    expect((await http(server, 'PUT', '/v1/session/create')).status).toBe(200);
    expect((await http(server, 'PUT', '/v1/session/create', { body: {} })).status).toBe(200);
  });

  it("validates Behavior with Consul's 500 body", async () => {
    const server = await startServer();
    const res = await http(server, 'PUT', '/v1/session/create', { body: { Behavior: 'explode' } });
    expect(res).toMatchObject({ status: 500, text: "Invalid Behavior setting 'explode'" });
  });

  it('validates TTL: unparsable, below the minimum, above 24h, and 0 meaning none', async () => {
    const server = await startServer();
    const bad = await http(server, 'PUT', '/v1/session/create', { body: { TTL: 'abc' } });
    expect(bad).toMatchObject({
      status: 500,
      text: 'Session TTL \'abc\' invalid: time: invalid duration "abc"',
    });
    const missingUnit = await http(server, 'PUT', '/v1/session/create', { body: { TTL: '15' } });
    expect(missingUnit.text).toBe('Session TTL \'15\' invalid: time: missing unit in duration "15"');
    const short = await http(server, 'PUT', '/v1/session/create', { body: { TTL: '5s' } });
    expect(short).toMatchObject({
      status: 500,
      text: "Invalid Session TTL '5000000000', must be between [10s=24h0m0s]",
    });
    const long = await http(server, 'PUT', '/v1/session/create', { body: { TTL: '25h' } });
    expect(long.text).toBe("Invalid Session TTL '90000000000000', must be between [10s=24h0m0s]");
    const none = await http(server, 'PUT', '/v1/session/create', { body: { TTL: '0s' } });
    expect(none.status).toBe(200);
  });

  it('reports a lowered TTL minimum in Go duration form', async () => {
    const server = await startServer({ sessionTtlMinMs: 200 });
    const short = await http(server, 'PUT', '/v1/session/create', { body: { TTL: '150ms' } });
    expect(short.text).toBe("Invalid Session TTL '150000000', must be between [200ms=24h0m0s]");
    expect((await http(server, 'PUT', '/v1/session/create', { body: { TTL: '200ms' } })).status).toBe(200);
  });

  it('rejects unknown nodes, missing checks and critical checks with 500', async () => {
    const server = await startServer();
    const node = await http(server, 'PUT', '/v1/session/create', { body: { Node: 'elsewhere' } });
    expect(node).toMatchObject({ status: 500, text: 'Missing node registration' });
    const check = await http(server, 'PUT', '/v1/session/create', {
      body: { NodeChecks: ['serfHealth', 'disk'] },
    });
    expect(check).toMatchObject({ status: 500, text: "Missing check 'disk' registration" });
    const service = await http(server, 'PUT', '/v1/session/create', {
      body: { ServiceChecks: [{ ID: 'web' }] },
    });
    expect(service).toMatchObject({ status: 500, text: "Missing check 'web' registration" });
    server.faults.failNodeCheck();
    const critical = await http(server, 'PUT', '/v1/session/create', { body: {} });
    expect(critical).toMatchObject({ status: 500, text: "Check 'serfHealth' is in critical state" });
  });

  it('treats "Checks": [] as no checks at all, so the session survives a failing node check', async () => {
    const server = await startServer();
    const consul = client(server);
    const { ID: bare } = await consul.session.create({ checks: [] });
    const { ID: bound } = await consul.session.create();
    const [info] = (await http(server, 'GET', `/v1/session/info/${bare}`)).json as SessionJson[];
    expect(info!.NodeChecks).toEqual([]);
    server.faults.failNodeCheck();
    expect((await http(server, 'GET', `/v1/session/info/${bare}`)).json).toHaveLength(1);
    expect((await http(server, 'GET', `/v1/session/info/${bound}`)).json).toEqual([]);
  });
});

describe('consul test server: renew, destroy, info, list, node', () => {
  it('renews with a one-element array and answers 404 "Session id \'<id>\' not found" when unknown', async () => {
    const server = await startServer({ sessionTtlMinMs: 100 });
    const consul = client(server);
    const { ID } = await consul.session.create({ ttl: '10s' });
    const renewed = await http(server, 'PUT', `/v1/session/renew/${ID}`);
    expect(renewed.status).toBe(200);
    expect(renewed.json).toEqual([expect.objectContaining({ ID, TTL: '10s' })]);
    const unknown = await http(server, 'PUT', '/v1/session/renew/00000000-0000-0000-0000-000000000000');
    expect(unknown).toMatchObject({
      status: 404,
      text: "Session id '00000000-0000-0000-0000-000000000000' not found",
    });
    await consul.session.destroy(ID);
    const error = await consul.session.renew(ID).then(
      () => undefined,
      (e: unknown) => e as { statusCode: number; message: string },
    );
    expect(error?.statusCode).toBe(404);
    expect(error?.message).toBe(`Session id '${ID}' not found`);
  });

  it('destroys idempotently: true for a live session, again, and for an unknown id', async () => {
    const server = await startServer();
    const consul = client(server);
    const { ID } = await consul.session.create();
    expect(await http(server, 'PUT', `/v1/session/destroy/${ID}`)).toMatchObject({ status: 200, json: true });
    expect(await http(server, 'PUT', `/v1/session/destroy/${ID}`)).toMatchObject({ status: 200, json: true });
    expect(await http(server, 'PUT', '/v1/session/destroy/not-a-session')).toMatchObject({
      status: 200,
      json: true,
    });
    expect(await http(server, 'PUT', '/v1/session/destroy/')).toMatchObject({
      status: 400,
      text: 'Missing session',
    });
    expect(await consul.session.info(ID)).toBeUndefined();
  });

  it('answers [] for an unknown session, lists sessions, and filters by node', async () => {
    const server = await startServer();
    const consul = client(server);
    expect((await http(server, 'GET', '/v1/session/info/nope')).json).toEqual([]);
    const a = await createSession(server, { Name: 'a' });
    const b = await createSession(server, { Name: 'b' });
    const list = (await http(server, 'GET', '/v1/session/list')).json as SessionJson[];
    expect(list.map((s) => s.ID).sort()).toEqual([a, b].sort());
    const listed = (await consul.session.list()) as unknown as SessionJson[];
    expect(listed).toHaveLength(2);
    expect((await http(server, 'GET', '/v1/session/node/baton-test-node')).json).toHaveLength(2);
    expect((await http(server, 'GET', '/v1/session/node/other')).json).toEqual([]);
    expect(await http(server, 'GET', '/v1/session/node/')).toMatchObject({
      status: 400,
      text: 'Missing node name',
    });
  });

  it('sets meta headers on session reads, with an index that moves on create and destroy', async () => {
    const server = await startServer();
    const before = await http(server, 'GET', '/v1/session/list');
    expect(before.headers.get('x-consul-knownleader')).toBe('true');
    expect(before.headers.get('x-consul-lastcontact')).toBe('0');
    expect(Number(before.headers.get('x-consul-index'))).toBeGreaterThanOrEqual(1);
    const id = await createSession(server);
    const created = await http(server, 'GET', `/v1/session/info/${id}`);
    const [info] = created.json as SessionJson[];
    expect(Number(created.headers.get('x-consul-index'))).toBe(info!.CreateIndex);
    await http(server, 'PUT', `/v1/session/destroy/${id}`);
    const after = await http(server, 'GET', '/v1/session/list');
    expect(Number(after.headers.get('x-consul-index'))).toBeGreaterThan(info!.CreateIndex);
  });
});

describe('consul test server: TTL expiry on the injected clock', () => {
  it('never invalidates before TTL and always by TTL × multiplier', async () => {
    const { server, clock } = await manualServer();
    const id = await createSession(server, { TTL: '1s' });
    await clock.advance(1_000);
    expect((await http(server, 'GET', `/v1/session/info/${id}`)).json).toHaveLength(1);
    await clock.advance(999);
    expect((await http(server, 'GET', `/v1/session/info/${id}`)).json).toHaveLength(1);
    await clock.advance(1);
    expect((await http(server, 'GET', `/v1/session/info/${id}`)).json).toEqual([]);
  });

  it('honours a custom multiplier', async () => {
    const { server, clock } = await manualServer({ ttlMultiplier: 3 });
    const id = await createSession(server, { TTL: '1s' });
    await clock.advance(2_999);
    expect((await http(server, 'GET', `/v1/session/info/${id}`)).json).toHaveLength(1);
    await clock.advance(1);
    expect((await http(server, 'GET', `/v1/session/info/${id}`)).json).toEqual([]);
  });

  it('restarts the timer on every renew', async () => {
    const { server, clock } = await manualServer();
    const id = await createSession(server, { TTL: '1s' });
    await clock.advance(1_500);
    expect((await http(server, 'PUT', `/v1/session/renew/${id}`)).status).toBe(200);
    await clock.advance(1_900);
    expect((await http(server, 'GET', `/v1/session/info/${id}`)).json).toHaveLength(1);
    await clock.advance(100);
    expect((await http(server, 'GET', `/v1/session/info/${id}`)).json).toEqual([]);
    expect((await http(server, 'PUT', `/v1/session/renew/${id}`)).status).toBe(404);
  });

  it('leaves sessions without a TTL alone', async () => {
    const { server, clock } = await manualServer();
    const id = await createSession(server);
    await clock.advance(24 * 3_600_000);
    expect((await http(server, 'GET', `/v1/session/info/${id}`)).json).toHaveLength(1);
  });

  it('on expiry with release behavior clears Session at a new ModifyIndex, keeping LockIndex, Value and Flags', async () => {
    const { server, clock } = await manualServer();
    const key = randomKey();
    const id = await createSession(server, { TTL: '1s', LockDelay: 0 });
    await http(server, 'PUT', `/v1/kv/${key}?acquire=${id}&flags=42`, { body: 'payload' });
    const held = await readEntry(server, key);
    await clock.advance(2_000);
    const released = await readEntry(server, key);
    expect(released).toEqual({
      ...held,
      Session: undefined,
      ModifyIndex: released!.ModifyIndex,
    });
    expect(released).not.toHaveProperty('Session');
    expect(released!.ModifyIndex).toBeGreaterThan(held!.ModifyIndex);
    expect(released).toMatchObject({
      LockIndex: 1,
      Flags: 42,
      Value: Buffer.from('payload').toString('base64'),
    });
  });

  it('on invalidation with delete behavior deletes the keys; a re-created key restarts LockIndex at 1 but not ModifyIndex', async () => {
    const { server, clock } = await manualServer();
    const key = randomKey();
    const first = await createSession(server, { TTL: '1s', Behavior: 'delete', LockDelay: 0 });
    await http(server, 'PUT', `/v1/kv/${key}?acquire=${first}`);
    await http(server, 'PUT', `/v1/kv/${key}?release=${first}`);
    await http(server, 'PUT', `/v1/kv/${key}?acquire=${first}`);
    const before = await readEntry(server, key);
    expect(before!.LockIndex).toBe(2);
    await clock.advance(2_000);
    expect(await readEntry(server, key)).toBeUndefined();
    const second = await createSession(server, { LockDelay: 0 });
    expect((await http(server, 'PUT', `/v1/kv/${key}?acquire=${second}`)).json).toBe(true);
    const recreated = await readEntry(server, key);
    expect(recreated!.LockIndex).toBe(1);
    expect(recreated!.CreateIndex).toBe(recreated!.ModifyIndex);
    expect(recreated!.ModifyIndex).toBeGreaterThan(before!.ModifyIndex);
  });

  it('destroy releases held keys like an expiry does', async () => {
    const server = await startServer();
    const key = randomKey();
    const id = await createSession(server, { LockDelay: 0 });
    await http(server, 'PUT', `/v1/kv/${key}?acquire=${id}`, { body: 'v' });
    const held = await readEntry(server, key);
    await http(server, 'PUT', `/v1/session/destroy/${id}`);
    const after = await readEntry(server, key);
    expect(after).not.toHaveProperty('Session');
    expect(after!.ModifyIndex).toBeGreaterThan(held!.ModifyIndex);
    expect(after!.LockIndex).toBe(held!.LockIndex);
  });
});
