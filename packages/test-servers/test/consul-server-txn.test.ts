import { describe, expect, it } from 'vitest';
import {
  b64,
  createSession,
  http,
  type KvJson,
  manualServer,
  randomKey,
  readEntry,
  startServer,
} from './consul-server/helpers.js';

interface TxnBody {
  Results: Array<{ KV: KvJson }> | null;
  Errors: Array<{ OpIndex: number; What: string }> | null;
}

type KvOp = {
  Verb: string;
  Key: string;
  Value?: string | null;
  Flags?: number;
  Index?: number;
  Session?: string;
};

function txn(ops: KvOp[]): Array<{ KV: KvOp }> {
  return ops.map((KV) => ({ KV }));
}

describe('consul test server: /v1/txn', () => {
  it('lock + get in one txn returns the entry with the ModifyIndex of the acquisition', async () => {
    const server = await startServer();
    const key = randomKey();
    const id = await createSession(server);
    const res = await http(server, 'PUT', '/v1/txn', {
      body: txn([
        { Verb: 'lock', Key: key, Value: b64('owner'), Session: id },
        { Verb: 'get', Key: key },
      ]),
    });
    expect(res.status).toBe(200);
    const body = res.json as TxnBody;
    expect(body.Errors).toBeNull();
    expect(body.Results).toHaveLength(2);
    const [lock, get] = body.Results!;
    expect(lock!.KV).toMatchObject({ Key: key, Value: null, Session: id, LockIndex: 1 });
    expect(get!.KV).toMatchObject({ Key: key, Value: b64('owner'), Session: id, LockIndex: 1 });
    expect(get!.KV.ModifyIndex).toBe(lock!.KV.ModifyIndex);
    expect((await readEntry(server, key))!.ModifyIndex).toBe(get!.KV.ModifyIndex);
    expect(server.history().at(-1)).toMatchObject({ key, session: id, modifyIndex: get!.KV.ModifyIndex });
  });

  it('rolls back everything with 409 when a lock cannot be acquired', async () => {
    const server = await startServer();
    const key = randomKey();
    const side = randomKey('side');
    const holder = await createSession(server);
    const other = await createSession(server);
    await http(server, 'PUT', `/v1/kv/${key}?acquire=${holder}`);
    const res = await http(server, 'PUT', '/v1/txn', {
      body: txn([
        { Verb: 'set', Key: side, Value: b64('should not stay') },
        { Verb: 'lock', Key: key, Session: other },
        { Verb: 'get', Key: key },
      ]),
    });
    expect(res.status).toBe(409);
    expect(res.json).toEqual({
      Results: null,
      Errors: [{ OpIndex: 1, What: `failed to lock key "${key}", lock is already held` }],
    });
    expect(await readEntry(server, side)).toBeUndefined();
    expect((await readEntry(server, key))!.Session).toBe(holder);
  });

  it('reports every failing operation, in order, with its OpIndex', async () => {
    const server = await startServer();
    const present = randomKey('present');
    const absent = randomKey('absent');
    await http(server, 'PUT', `/v1/kv/${present}`, { body: 'x' });
    const entry = await readEntry(server, present);
    const res = await http(server, 'PUT', '/v1/txn', {
      body: txn([
        { Verb: 'check-not-exists', Key: present },
        { Verb: 'check-index', Key: present, Index: entry!.ModifyIndex + 1 },
        { Verb: 'get', Key: absent },
        { Verb: 'check-session', Key: present, Session: 'abc' },
        { Verb: 'cas', Key: present, Index: 1, Value: b64('y') },
        { Verb: 'delete-cas', Key: present, Index: 1 },
        { Verb: 'unlock', Key: present, Session: 'abc' },
        { Verb: 'explode', Key: present },
        { Verb: 'set', Key: absent, Value: b64('fine') },
      ]),
    });
    expect(res.status).toBe(409);
    expect((res.json as TxnBody).Errors).toEqual([
      { OpIndex: 0, What: `key "${present}" exists` },
      {
        OpIndex: 1,
        What: `failed index check for key "${present}", current modify index ${entry!.ModifyIndex} != ${entry!.ModifyIndex + 1}`,
      },
      { OpIndex: 2, What: `key "${absent}" doesn't exist` },
      { OpIndex: 3, What: `failed session check for key "${present}", current session "" != "abc"` },
      { OpIndex: 4, What: `failed to set key "${present}", index is stale` },
      { OpIndex: 5, What: `failed to delete key "${present}", index is stale` },
      {
        OpIndex: 6,
        What: `failed to unlock key "${present}", lock isn't held, or is held by another session`,
      },
      { OpIndex: 7, What: 'unknown KV verb "explode"' },
    ]);
    expect(await readEntry(server, absent)).toBeUndefined();
  });

  it('commits set, cas, check-*, unlock, delete and delete-cas atomically, later ops seeing earlier ones', async () => {
    const server = await startServer();
    const a = randomKey('a');
    const b = randomKey('b');
    const c = randomKey('c');
    const id = await createSession(server);
    await http(server, 'PUT', `/v1/kv/${c}`, { body: 'doomed' });
    const cEntry = await readEntry(server, c);
    const res = await http(server, 'PUT', '/v1/txn', {
      body: txn([
        { Verb: 'check-not-exists', Key: a },
        { Verb: 'set', Key: a, Value: b64('A'), Flags: 5 },
        { Verb: 'lock', Key: b, Session: id },
        { Verb: 'check-session', Key: b, Session: id },
        { Verb: 'unlock', Key: b, Session: id, Value: b64('B') },
        { Verb: 'delete-cas', Key: c, Index: cEntry!.ModifyIndex },
        { Verb: 'get', Key: a },
      ]),
    });
    expect(res.status).toBe(200);
    const { Results } = res.json as TxnBody;
    const index = Results![0]!.KV.ModifyIndex;
    expect(Results!.map((r) => r.KV.Key)).toEqual([a, b, b, b, a]);
    expect(Results!.every((r) => r.KV.ModifyIndex === index)).toBe(true);
    expect(Results![4]!.KV).toMatchObject({ Value: b64('A'), Flags: 5 });
    expect(await readEntry(server, b)).toMatchObject({ Value: b64('B'), LockIndex: 1, ModifyIndex: index });
    expect(await readEntry(server, b)).not.toHaveProperty('Session');
    expect(await readEntry(server, c)).toBeUndefined();
    const cas = await http(server, 'PUT', '/v1/txn', {
      body: txn([
        { Verb: 'cas', Key: a, Index: index, Value: b64('A2') },
        { Verb: 'delete', Key: b },
      ]),
    });
    expect(cas.status).toBe(200);
    expect((cas.json as TxnBody).Results).toHaveLength(1);
    expect((await readEntry(server, a))!.Value).toBe(b64('A2'));
    expect(await readEntry(server, b)).toBeUndefined();
  });

  it('get-tree in a write txn lists the prefix as the txn leaves it, values included, in key order', async () => {
    // What a waiting line does: lock a new place key and read the whole line in one round trip.
    const server = await startServer();
    const dir = `${randomKey('line')}/.wait/`;
    const [a, b] = [await createSession(server), await createSession(server)];
    const first = await http(server, 'PUT', '/v1/txn', {
      body: txn([
        { Verb: 'lock', Key: `${dir}z`, Session: a },
        { Verb: 'get-tree', Key: dir },
      ]),
    });
    expect(first.status).toBe(200);
    const [placed, ...line] = (first.json as TxnBody).Results!;
    expect(placed!.KV).toMatchObject({ Key: `${dir}z`, Session: a, LockIndex: 1 });
    expect(line.map((r) => r.KV)).toEqual([placed!.KV]);
    expect(placed!.KV.CreateIndex).toBe(placed!.KV.ModifyIndex);
    const second = await http(server, 'PUT', '/v1/txn', {
      body: txn([
        { Verb: 'lock', Key: `${dir}a`, Value: b64('v'), Session: b },
        { Verb: 'get-tree', Key: dir },
        { Verb: 'get-tree', Key: `${dir}nothing-here/` },
      ]),
    });
    const results = (second.json as TxnBody).Results!;
    expect(results.map((r) => r.KV.Key)).toEqual([`${dir}a`, `${dir}a`, `${dir}z`]);
    expect(results[1]!.KV).toMatchObject({ Value: b64('v'), Session: b });
    expect(results[1]!.KV.CreateIndex).toBeGreaterThan(placed!.KV.CreateIndex);
    // Invalidating a session releases its place (behavior release): still listed, without a Session.
    await http(server, 'PUT', `/v1/session/destroy/${a}`);
    const after = await http(server, 'PUT', '/v1/txn', { body: txn([{ Verb: 'get-tree', Key: dir }]) });
    expect((after.json as TxnBody).Results!.map((r) => [r.KV.Key, r.KV.Session])).toEqual([
      [`${dir}a`, b],
      [`${dir}z`, undefined],
    ]);
  });

  it('refuses a lock during lock-delay with 409 "due to lock delay" and applies nothing', async () => {
    const { server, clock } = await manualServer();
    const key = randomKey();
    const side = randomKey('side');
    const holder = await createSession(server, { LockDelay: '2s' });
    const other = await createSession(server);
    await http(server, 'PUT', `/v1/kv/${key}?acquire=${holder}`);
    await http(server, 'PUT', `/v1/session/destroy/${holder}`);
    const body = txn([
      { Verb: 'set', Key: side, Value: b64('x') },
      { Verb: 'lock', Key: key, Session: other },
    ]);
    const refused = await http(server, 'PUT', '/v1/txn', { body });
    expect(refused.status).toBe(409);
    expect((refused.json as TxnBody).Errors).toEqual([
      { OpIndex: 1, What: `failed to lock key "${key}" due to lock delay` },
    ]);
    expect(await readEntry(server, side)).toBeUndefined();
    await clock.advance(2_000);
    expect((await http(server, 'PUT', '/v1/txn', { body })).status).toBe(200);
  });

  it('rejects malformed bodies with 400, too many operations and values with 413, empty keys with 409', async () => {
    const server = await startServer();
    expect(
      await http(server, 'PUT', '/v1/txn', { body: '[{"KV": {"Verb": "get", "Key": }}]' }),
    ).toMatchObject({
      status: 400,
      text: "Failed to parse body: invalid character '}' looking for beginning of value",
    });
    expect(
      await http(server, 'PUT', '/v1/txn', { body: [{ KV: { Verb: 'get', Key: 'k', Nope: 1 } }] }),
    ).toMatchObject({ status: 400, text: 'Failed to parse body: json: unknown field "Nope"' });
    expect(
      await http(server, 'PUT', '/v1/txn', { body: txn([{ Verb: 'set', Key: 'k', Value: '!!' }]) }),
    ).toMatchObject({
      status: 400,
      text: 'Failed to parse body: illegal base64 data at input byte 0',
    });
    const many = txn(Array.from({ length: 129 }, (_, i) => ({ Verb: 'get', Key: `k${i}` })));
    expect(await http(server, 'PUT', '/v1/txn', { body: many })).toMatchObject({
      status: 413,
      text: 'Transaction contains too many operations (129 > 128)',
    });
    const okMany = txn(
      Array.from({ length: 128 }, (_, i) => ({ Verb: 'set', Key: `many/k${i}`, Value: b64('v') })),
    );
    expect((await http(server, 'PUT', '/v1/txn', { body: okMany })).status).toBe(200);
    const empty = await http(server, 'PUT', '/v1/txn', { body: txn([{ Verb: 'set', Key: '' }]) });
    expect(empty.status).toBe(409);
    expect((empty.json as TxnBody).Errors).toEqual([{ OpIndex: 0, What: 'Must provide key' }]);
  });

  it('serves read-only transactions with leader headers, and with ?stale during an election', async () => {
    const { server } = await manualServer();
    const key = randomKey();
    await http(server, 'PUT', `/v1/kv/${key}`, { body: 'r' });
    const read = await http(server, 'PUT', '/v1/txn', { body: txn([{ Verb: 'get', Key: key }]) });
    expect(read.status).toBe(200);
    expect(read.headers.get('x-consul-knownleader')).toBe('true');
    expect((read.json as TxnBody).Results![0]!.KV.Value).toBe(b64('r'));
    server.faults.leaderElection({ durationMs: 1_000 });
    const noLeader = await http(server, 'PUT', '/v1/txn', { body: txn([{ Verb: 'get', Key: key }]) });
    expect(noLeader).toMatchObject({ status: 500, text: 'No cluster leader' });
    const stale = await http(server, 'PUT', '/v1/txn?stale', { body: txn([{ Verb: 'get', Key: key }]) });
    expect(stale.status).toBe(200);
    expect(stale.headers.get('x-consul-knownleader')).toBe('false');
    const write = await http(server, 'PUT', '/v1/txn?stale', { body: txn([{ Verb: 'set', Key: key }]) });
    expect(write).toMatchObject({ status: 500, text: 'No cluster leader' });
  });
});
