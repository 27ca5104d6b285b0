import { describe, expect, it } from 'vitest';
import {
  b64,
  client,
  createSession,
  http,
  indexOf,
  type KvJson,
  manualServer,
  randomKey,
  rawRequest,
  readEntry,
  startServer,
} from './consul-server/helpers.js';

describe('consul test server: ?acquire', () => {
  it('empty session → 500 "missing session"', async () => {
    const server = await startServer();
    const res = await http(server, 'PUT', `/v1/kv/${randomKey()}?acquire=`);
    expect(res).toMatchObject({ status: 500, text: 'missing session' });
  });

  it('unknown session → 500 invalid session "<id>"', async () => {
    const server = await startServer();
    const res = await http(server, 'PUT', `/v1/kv/${randomKey()}?acquire=feed-beef`);
    expect(res).toMatchObject({ status: 500, text: 'invalid session "feed-beef"' });
  });

  it('missing key → created with LockIndex 1 and CreateIndex = ModifyIndex = a new index', async () => {
    const server = await startServer();
    const consul = client(server);
    const key = randomKey();
    const { ID } = await consul.session.create();
    const before = indexOf(await http(server, 'GET', `/v1/kv/${key}`));
    expect(await consul.kv.set({ key, value: 'mine', acquire: ID })).toBe(true);
    const entry = await consul.kv.get(key);
    expect(entry).toMatchObject({ Key: key, Value: 'mine', LockIndex: 1, Flags: 0, Session: ID });
    expect(entry!.CreateIndex).toBe(entry!.ModifyIndex);
    expect(entry!.ModifyIndex).toBeGreaterThan(before);
  });

  it('exists and unlocked → LockIndex + 1, CreateIndex kept, ModifyIndex new', async () => {
    const server = await startServer();
    const consul = client(server);
    const key = randomKey();
    await consul.kv.set(key, 'plain');
    const plain = await readEntry(server, key);
    const { ID } = await consul.session.create();
    expect(await consul.kv.set({ key, value: 'locked', acquire: ID })).toBe(true);
    const locked = await readEntry(server, key);
    expect(locked).toMatchObject({
      LockIndex: 1,
      CreateIndex: plain!.CreateIndex,
      Session: ID,
      Value: b64('locked'),
    });
    expect(locked!.ModifyIndex).toBeGreaterThan(plain!.ModifyIndex);
    await consul.kv.set({ key, value: 'locked', release: ID });
    expect(await consul.kv.set({ key, value: 'again', acquire: ID })).toBe(true);
    expect((await readEntry(server, key))!.LockIndex).toBe(2);
  });

  it('held by the same session → true, LockIndex unchanged, Value/Flags replaced, ModifyIndex kept when nothing changed', async () => {
    const server = await startServer();
    const key = randomKey();
    const id = await createSession(server);
    await http(server, 'PUT', `/v1/kv/${key}?acquire=${id}&flags=7`, { body: 'one' });
    const first = await readEntry(server, key);
    const same = await http(server, 'PUT', `/v1/kv/${key}?acquire=${id}&flags=7`, { body: 'one' });
    expect(same.json).toBe(true);
    expect(await readEntry(server, key)).toEqual(first);
    expect((await http(server, 'PUT', `/v1/kv/${key}?acquire=${id}`, { body: 'two' })).json).toBe(true);
    const changed = await readEntry(server, key);
    expect(changed).toMatchObject({ LockIndex: first!.LockIndex, Flags: 0, Value: b64('two'), Session: id });
    expect(changed!.ModifyIndex).toBeGreaterThan(first!.ModifyIndex);
  });

  it('held by another session → false, entry untouched', async () => {
    const server = await startServer();
    const consul = client(server);
    const key = randomKey();
    const { ID: a } = await consul.session.create();
    const { ID: b } = await consul.session.create();
    await consul.kv.set({ key, value: 'a', acquire: a });
    const held = await readEntry(server, key);
    // The npm client resolves a `false` body as undefined; the wire answer is `false`.
    expect(await consul.kv.set({ key, value: 'b', acquire: b })).not.toBe(true);
    expect((await http(server, 'PUT', `/v1/kv/${key}?acquire=${b}`, { body: 'b' })).text).toBe('false');
    expect(await readEntry(server, key)).toEqual(held);
  });

  it('lock-delay active → false (not an error), from any session, even an unknown one', async () => {
    const { server, clock } = await manualServer();
    const key = randomKey();
    const holder = await createSession(server, { LockDelay: '5s' });
    const other = await createSession(server);
    await http(server, 'PUT', `/v1/kv/${key}?acquire=${holder}`);
    await http(server, 'PUT', `/v1/session/destroy/${holder}`);
    expect(await http(server, 'PUT', `/v1/kv/${key}?acquire=${other}`)).toMatchObject({
      status: 200,
      json: false,
    });
    expect(await http(server, 'PUT', `/v1/kv/${key}?acquire=unknown`)).toMatchObject({
      status: 200,
      json: false,
    });
    await clock.advance(4_999);
    expect((await http(server, 'PUT', `/v1/kv/${key}?acquire=${other}`)).json).toBe(false);
    await clock.advance(1);
    expect((await http(server, 'PUT', `/v1/kv/${key}?acquire=${other}`)).json).toBe(true);
  });

  it('a value-less acquire shows Value null', async () => {
    const server = await startServer();
    const key = randomKey();
    const id = await createSession(server);
    await http(server, 'PUT', `/v1/kv/${key}?acquire=${id}`);
    expect(await readEntry(server, key)).toMatchObject({ Value: null, Session: id });
  });
});

describe('consul test server: ?release', () => {
  it('empty session → 500 "missing session"', async () => {
    const server = await startServer();
    const res = await http(server, 'PUT', `/v1/kv/${randomKey()}?release=`);
    expect(res).toMatchObject({ status: 500, text: 'missing session' });
  });

  it('missing key → false', async () => {
    const server = await startServer();
    const id = await createSession(server);
    expect((await http(server, 'PUT', `/v1/kv/${randomKey()}?release=${id}`)).json).toBe(false);
  });

  it('held by another session (or not held) → false', async () => {
    const server = await startServer();
    const consul = client(server);
    const key = randomKey();
    const { ID: a } = await consul.session.create();
    const { ID: b } = await consul.session.create();
    await consul.kv.set({ key, value: 'a', acquire: a });
    expect(await consul.kv.set({ key, value: 'b', release: b })).not.toBe(true);
    expect((await http(server, 'PUT', `/v1/kv/${key}?release=${b}`, { body: 'b' })).json).toBe(false);
    expect((await readEntry(server, key))!.Session).toBe(a);
    expect(await consul.kv.set({ key, value: 'a', release: a })).toBe(true);
    expect((await http(server, 'PUT', `/v1/kv/${key}?release=${a}`, { body: 'a' })).json).toBe(false);
  });

  it('by the holder → Session cleared, LockIndex unchanged, ModifyIndex new, Value and Flags replaced', async () => {
    const server = await startServer();
    const key = randomKey();
    const id = await createSession(server);
    await http(server, 'PUT', `/v1/kv/${key}?acquire=${id}&flags=3`, { body: 'held' });
    const held = await readEntry(server, key);
    expect((await http(server, 'PUT', `/v1/kv/${key}?release=${id}`, { body: 'done' })).json).toBe(true);
    const released = await readEntry(server, key);
    expect(released).toEqual({
      LockIndex: held!.LockIndex,
      Key: key,
      Flags: 0,
      Value: b64('done'),
      CreateIndex: held!.CreateIndex,
      ModifyIndex: released!.ModifyIndex,
    });
    expect(released!.ModifyIndex).toBeGreaterThan(held!.ModifyIndex);
  });

  it('sets no lock-delay: another session acquires right away', async () => {
    const server = await startServer();
    const key = randomKey();
    const a = await createSession(server, { LockDelay: '60s' });
    const b = await createSession(server);
    await http(server, 'PUT', `/v1/kv/${key}?acquire=${a}`);
    await http(server, 'PUT', `/v1/kv/${key}?release=${a}`);
    expect((await http(server, 'PUT', `/v1/kv/${key}?acquire=${b}`)).json).toBe(true);
  });
});

describe('consul test server: lock-delay after invalidation', () => {
  it.each(['release', 'delete'])(
    'applies min(LockDelay, max) after a %s-behavior session is destroyed',
    async (behavior) => {
      const { server, clock } = await manualServer({ maxLockDelayMs: 3_000 });
      const key = randomKey();
      const holder = await createSession(server, { LockDelay: '10s', Behavior: behavior });
      const other = await createSession(server);
      await http(server, 'PUT', `/v1/kv/${key}?acquire=${holder}`);
      await http(server, 'PUT', `/v1/session/destroy/${holder}`);
      expect(await readEntry(server, key)).toEqual(behavior === 'delete' ? undefined : expect.any(Object));
      expect((await http(server, 'PUT', `/v1/kv/${key}?acquire=${other}`)).json).toBe(false);
      await clock.advance(2_999);
      expect((await http(server, 'PUT', `/v1/kv/${key}?acquire=${other}`)).json).toBe(false);
      await clock.advance(1);
      expect((await http(server, 'PUT', `/v1/kv/${key}?acquire=${other}`)).json).toBe(true);
    },
  );

  it('applies after a TTL expiry, and not at all with LockDelay 0', async () => {
    const { server, clock } = await manualServer();
    const delayed = randomKey('delayed');
    const free = randomKey('free');
    const a = await createSession(server, { TTL: '1s', LockDelay: '1s' });
    const b = await createSession(server, { TTL: '1s', LockDelay: 0 });
    await http(server, 'PUT', `/v1/kv/${delayed}?acquire=${a}`);
    await http(server, 'PUT', `/v1/kv/${free}?acquire=${b}`);
    await clock.advance(2_000);
    const other = await createSession(server);
    expect((await http(server, 'PUT', `/v1/kv/${free}?acquire=${other}`)).json).toBe(true);
    expect((await http(server, 'PUT', `/v1/kv/${delayed}?acquire=${other}`)).json).toBe(false);
    await clock.advance(1_000);
    expect((await http(server, 'PUT', `/v1/kv/${delayed}?acquire=${other}`)).json).toBe(true);
  });

  it('is not set by DELETE of a held key, which is allowed (locks are advisory)', async () => {
    const server = await startServer();
    const key = randomKey();
    const a = await createSession(server, { LockDelay: '60s' });
    const b = await createSession(server);
    await http(server, 'PUT', `/v1/kv/${key}?acquire=${a}`);
    expect((await http(server, 'DELETE', `/v1/kv/${key}`)).json).toBe(true);
    expect((await http(server, 'PUT', `/v1/kv/${key}?acquire=${b}`)).json).toBe(true);
  });
});

describe('consul test server: plain set, cas, flags', () => {
  it('plain set returns true and keeps the holder (Consul writes LockIndex 0, as it does)', async () => {
    const server = await startServer();
    const key = randomKey();
    const id = await createSession(server);
    await http(server, 'PUT', `/v1/kv/${key}?acquire=${id}`, { body: 'held' });
    expect((await http(server, 'PUT', `/v1/kv/${key}`, { body: 'overwritten' })).json).toBe(true);
    expect(await readEntry(server, key)).toMatchObject({
      Session: id,
      Value: b64('overwritten'),
      LockIndex: 0,
    });
  });

  it('an identical plain set keeps ModifyIndex; a changed one moves it', async () => {
    const server = await startServer();
    const key = randomKey();
    await http(server, 'PUT', `/v1/kv/${key}?flags=1`, { body: 'x' });
    const first = await readEntry(server, key);
    await http(server, 'PUT', `/v1/kv/${key}?flags=1`, { body: 'x' });
    expect((await readEntry(server, key))!.ModifyIndex).toBe(first!.ModifyIndex);
    await http(server, 'PUT', `/v1/kv/${key}?flags=2`, { body: 'x' });
    expect((await readEntry(server, key))!.ModifyIndex).toBeGreaterThan(first!.ModifyIndex);
  });

  it('?cas=0 writes only a missing key; ?cas=N only at ModifyIndex N', async () => {
    const server = await startServer();
    const consul = client(server);
    const key = randomKey();
    expect(await consul.kv.set({ key, value: 'v1', cas: 0 })).toBe(true);
    expect((await http(server, 'PUT', `/v1/kv/${key}?cas=0`, { body: 'v2' })).json).toBe(false);
    const entry = await readEntry(server, key);
    expect(
      (await http(server, 'PUT', `/v1/kv/${key}?cas=${entry!.ModifyIndex + 1}`, { body: 'v2' })).json,
    ).toBe(false);
    expect(await consul.kv.set({ key, value: 'v2', cas: entry!.ModifyIndex })).toBe(true);
    expect((await http(server, 'PUT', `/v1/kv/${randomKey()}?cas=5`, { body: 'x' })).json).toBe(false);
    expect((await consul.kv.get(key))!.Value).toBe('v2');
  });

  it('stores uint64 flags exactly and resets them to 0 when absent', async () => {
    const server = await startServer();
    const key = randomKey();
    await http(server, 'PUT', `/v1/kv/${key}?flags=18446744073709551615`, { body: 'x' });
    expect((await http(server, 'GET', `/v1/kv/${key}`)).text).toContain('"Flags":18446744073709551615');
    await http(server, 'PUT', `/v1/kv/${key}`, { body: 'x' });
    expect((await readEntry(server, key))!.Flags).toBe(0);
    const bad = await http(server, 'PUT', `/v1/kv/${key}?flags=abc`, { body: 'x' });
    expect(bad).toMatchObject({ status: 500, text: 'strconv.ParseUint: parsing "abc": invalid syntax' });
  });

  it('rejects more than one of cas / acquire / release with 400 "Conflicting flags: ..."', async () => {
    const server = await startServer();
    const key = randomKey();
    const res = await http(server, 'PUT', `/v1/kv/${key}?release=b&cas=3&acquire=a`);
    expect(res).toMatchObject({ status: 400, text: 'Conflicting flags: acquire=a&cas=3&release=b\n' });
  });

  it('rejects values over 512 KiB with 413', async () => {
    const server = await startServer();
    const key = randomKey();
    const res = await http(server, 'PUT', `/v1/kv/${key}`, { body: 'x'.repeat(512 * 1024 + 1) });
    expect(res.status).toBe(413);
    expect(res.text).toMatch(/^Request body\(524289 bytes\) too large, max size: 524288 bytes\./);
    expect((await http(server, 'PUT', `/v1/kv/${key}`, { body: 'x'.repeat(512 * 1024) })).status).toBe(200);
  });

  it('hands out one global, strictly increasing ModifyIndex across keys', async () => {
    const server = await startServer();
    const consul = client(server);
    const indexes: number[] = [];
    for (const name of ['a', 'b', 'a', 'c']) {
      const key = `global-${name}`;
      await consul.kv.set(key, String(indexes.length));
      indexes.push((await readEntry(server, key))!.ModifyIndex);
    }
    for (let i = 1; i < indexes.length; i++) expect(indexes[i]).toBeGreaterThan(indexes[i - 1]!);
  });
});

describe('consul test server: GET', () => {
  it('answers a missing key with 404, an empty body and meta headers (index ≥ 1)', async () => {
    const server = await startServer();
    const res = await http(server, 'GET', `/v1/kv/${randomKey()}`);
    expect(res.status).toBe(404);
    expect(res.text).toBe('');
    expect(indexOf(res)).toBeGreaterThanOrEqual(1);
    expect(res.headers.get('x-consul-knownleader')).toBe('true');
    expect(res.headers.get('x-consul-lastcontact')).toBe('0');
    expect(await client(server).kv.get(randomKey())).toBeUndefined();
  });

  it("returns the entry array with the key's ModifyIndex as X-Consul-Index, and ?raw bytes", async () => {
    const server = await startServer();
    const key = randomKey();
    await http(server, 'PUT', `/v1/kv/${key}?flags=9`, { body: 'raw value' });
    await http(server, 'PUT', `/v1/kv/${randomKey()}`, { body: 'later write' });
    const res = await http(server, 'GET', `/v1/kv/${key}`);
    expect(res.headers.get('content-type')).toBe('application/json');
    const [entry] = res.json as KvJson[];
    expect(entry).toEqual({
      LockIndex: 0,
      Key: key,
      Flags: 9,
      Value: b64('raw value'),
      CreateIndex: entry!.CreateIndex,
      ModifyIndex: entry!.CreateIndex,
    });
    expect(indexOf(res)).toBe(entry!.ModifyIndex);
    const raw = await http(server, 'GET', `/v1/kv/${key}?raw`);
    expect(raw.text).toBe('raw value');
    expect(raw.headers.get('content-type')).toBe('text/plain');
    expect(indexOf(raw)).toBe(entry!.ModifyIndex);
  });

  it('lists with ?recurse (404 when empty) and ?keys with ?separator', async () => {
    const server = await startServer();
    const consul = client(server);
    const prefix = randomKey('tree');
    for (const k of ['a', 'b/1', 'b/2', 'c/d/e']) await consul.kv.set(`${prefix}/${k}`, k);
    const listed = (await http(server, 'GET', `/v1/kv/${prefix}/?recurse`)).json as KvJson[];
    expect(listed.map((e) => e.Key)).toEqual(['a', 'b/1', 'b/2', 'c/d/e'].map((k) => `${prefix}/${k}`));
    const viaClient = (await consul.kv.get({ key: `${prefix}/b/`, recurse: true })) as unknown as KvJson[];
    expect(viaClient.map((e) => e.Value)).toEqual(['b/1', 'b/2']);
    expect((await http(server, 'GET', `/v1/kv/${prefix}/?keys&separator=/`)).json).toEqual(
      ['a', 'b/', 'c/'].map((k) => `${prefix}/${k}`),
    );
    expect(await consul.kv.keys(`${prefix}/c`)).toEqual([`${prefix}/c/d/e`]);
    expect((await http(server, 'GET', `/v1/kv/${prefix}/zzz?recurse`)).status).toBe(404);
    expect((await http(server, 'GET', `/v1/kv/${prefix}/zzz?keys`)).status).toBe(404);
  });

  it('counts tombstones in a listing index', async () => {
    const server = await startServer();
    const prefix = randomKey('dir');
    await http(server, 'PUT', `/v1/kv/${prefix}/a`, { body: 'a' });
    await http(server, 'PUT', `/v1/kv/${prefix}/b`, { body: 'b' });
    const before = await http(server, 'GET', `/v1/kv/${prefix}/?recurse`);
    await http(server, 'DELETE', `/v1/kv/${prefix}/b`);
    await http(server, 'PUT', `/v1/kv/${randomKey()}`, { body: 'elsewhere' });
    const after = await http(server, 'GET', `/v1/kv/${prefix}/?recurse`);
    expect(after.json).toHaveLength(1);
    expect(indexOf(after)).toBeGreaterThan(indexOf(before));
    const elsewhere = await http(server, 'GET', '/v1/kv/?recurse');
    expect(indexOf(elsewhere)).toBeGreaterThan(indexOf(after));
  });

  it("answers a missing key with the table's max index, which tombstones move too", async () => {
    const server = await startServer();
    const key = randomKey();
    await http(server, 'PUT', `/v1/kv/${key}`, { body: 'x' });
    const written = await readEntry(server, key);
    expect(indexOf(await http(server, 'GET', `/v1/kv/${randomKey()}`))).toBe(written!.ModifyIndex);
    await http(server, 'DELETE', `/v1/kv/${key}`);
    expect(indexOf(await http(server, 'GET', `/v1/kv/${key}`))).toBeGreaterThan(written!.ModifyIndex);
  });

  it('rejects missing keys, bad flags combinations and malformed query options with 400', async () => {
    const server = await startServer();
    const key = randomKey();
    expect(await http(server, 'GET', '/v1/kv/')).toMatchObject({ status: 400, text: 'Missing key name' });
    expect(await http(server, 'PUT', '/v1/kv/')).toMatchObject({ status: 400, text: 'Missing key name' });
    expect(await http(server, 'DELETE', '/v1/kv/')).toMatchObject({ status: 400, text: 'Missing key name' });
    expect(await http(server, 'GET', `/v1/kv/${key}?stale&consistent`)).toMatchObject({
      status: 400,
      text: 'Cannot specify ?stale with ?consistent, conflicting semantics.',
    });
    expect(await http(server, 'GET', `/v1/kv/${key}?index=1&wait=5`)).toMatchObject({
      status: 400,
      text: 'Invalid wait time',
    });
    expect(await http(server, 'GET', `/v1/kv/${key}?index=-1`)).toMatchObject({
      status: 400,
      text: 'Invalid index',
    });
    expect(
      (await http(server, 'GET', `/v1/kv/${key}?consistent`)).headers.get('x-consul-effective-consistency'),
    ).toBe('consistent');
    expect((await http(server, 'GET', `/v1/kv/${key}?stale`)).status).toBe(404);
  });

  it.each([
    [
      'bad key!',
      "key contains invalid character ' ' at position 3. Only alphanumeric characters and ,-_./ are allowed",
    ],
    [
      'a:b',
      "key contains invalid character ':' at position 1. Only alphanumeric characters and ,-_./ are allowed",
    ],
    ['a/../b', 'URL path contains invalid traversal sequence'],
    ['config/app.json', "key contains suspicious file extension '.json' that may be cached by proxies"],
  ])('rejects key %j with 400', async (key, reason) => {
    const server = await startServer();
    const res = await rawRequest(
      server,
      'PUT',
      `/v1/kv/${encodeURIComponent(key).replace(/%2F/g, '/')}`,
      'x',
    );
    expect(res).toMatchObject({ status: 400, text: reason });
  });

  it('accepts the whole allowed alphabet', async () => {
    const server = await startServer();
    const key = 'Az09,-_./az';
    expect((await http(server, 'PUT', `/v1/kv/${key}`, { body: 'ok' })).json).toBe(true);
    expect((await readEntry(server, key))!.Key).toBe(key);
  });
});

describe('consul test server: DELETE', () => {
  it('deletes one key (true even when missing), a tree with ?recurse, and answers ?cas with a boolean', async () => {
    const server = await startServer();
    const consul = client(server);
    const prefix = randomKey('del');
    for (const k of ['a', 'b', 'c']) await consul.kv.set(`${prefix}/${k}`, k);
    expect(await consul.kv.del(`${prefix}/a`)).toBe(true);
    expect(await consul.kv.del(`${prefix}/a`)).toBe(true);
    const b = await readEntry(server, `${prefix}/b`);
    expect((await http(server, 'DELETE', `/v1/kv/${prefix}/b?cas=${b!.ModifyIndex + 1}`)).json).toBe(false);
    expect((await http(server, 'DELETE', `/v1/kv/${prefix}/b?cas=${b!.ModifyIndex}`)).json).toBe(true);
    expect(await readEntry(server, `${prefix}/b`)).toBeUndefined();
    expect(await consul.kv.del({ key: `${prefix}/`, recurse: true })).toBe(true);
    expect((await http(server, 'GET', `/v1/kv/${prefix}/?recurse`)).status).toBe(404);
    expect(await http(server, 'DELETE', `/v1/kv/${prefix}?recurse&cas=1`)).toMatchObject({
      status: 400,
      text: 'Conflicting flags: cas=1&recurse=\n',
    });
  });
});

describe('consul test server: routing', () => {
  it('answers a wrong method with 405 and Allow, OPTIONS with Allow, unknown paths with 404', async () => {
    const server = await startServer();
    const wrong = await http(server, 'POST', '/v1/kv/x');
    expect(wrong).toMatchObject({ status: 405, text: 'method POST not allowed' });
    expect(wrong.headers.get('allow')).toBe('OPTIONS,GET,PUT,DELETE');
    const renew = await http(server, 'GET', '/v1/session/renew/x');
    expect(renew.status).toBe(405);
    expect(renew.headers.get('allow')).toBe('OPTIONS,PUT');
    const options = await http(server, 'OPTIONS', '/v1/txn');
    expect(options.status).toBe(200);
    expect(options.headers.get('allow')).toBe('OPTIONS,PUT');
    expect(await http(server, 'GET', '/v1/nope')).toMatchObject({
      status: 404,
      text: 'Invalid URL path: not a recognized HTTP API endpoint\n',
    });
  });

  it('answers /v1/status/leader, /v1/status/peers and /v1/agent/self', async () => {
    const server = await startServer({ nodeName: 'n1', datacenter: 'dc9' });
    expect((await http(server, 'GET', '/v1/status/leader')).json).toBe('127.0.0.1:8300');
    expect((await http(server, 'GET', '/v1/status/peers')).json).toEqual(['127.0.0.1:8300']);
    const self = (await http(server, 'GET', '/v1/agent/self')).json as { Config: Record<string, unknown> };
    expect(self.Config).toMatchObject({ NodeName: 'n1', Datacenter: 'dc9', Server: true });
    expect(await http(server, 'GET', '/v1/kv/x?dc=dc1')).toMatchObject({
      status: 500,
      text: 'No path to datacenter',
    });
  });
});
