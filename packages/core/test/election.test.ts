import { hostname } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type BatonError,
  type CandidateInfo,
  decodeLeaderInfo,
  Election,
  type LeaderInfo,
  type Leadership,
  type LockHolder,
  type LockProvider,
  type LockSession,
  ManualClock,
  MemoryLockProvider,
  type MemorySession,
  runWhileLeader,
} from '../src/index.js';

const TTL = 200;
const providers: MemoryLockProvider[] = [];

function memory(ttlMs = TTL): MemoryLockProvider {
  const provider = new MemoryLockProvider({ ttlMs, lockDelayMs: 0 });
  providers.push(provider);
  return provider;
}

afterEach(async () => {
  await Promise.all(providers.splice(0).map((p) => p.close()));
});

let keys = 0;
const freshKey = () => `election-test/${process.pid}/${++keys}`;
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(
  probe: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await probe())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}

function code(error: unknown): string | undefined {
  return (error as BatonError | undefined)?.code;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );
}

/** Tracks who believes it leads; fails when a second believer appears. */
/** A property of `target` read for a proxy: methods stay bound to the real object (private fields). */
function bound(target: object, property: string | symbol): unknown {
  const value: unknown = Reflect.get(target, property, target);
  return typeof value === 'function' ? value.bind(target) : value;
}

class Believers {
  readonly current = new Set<string>();
  readonly terms: number[] = [];
  elected(name: string, leadership: Leadership): void {
    expect([...this.current], `${name} elected while others still believe they lead`).toEqual([]);
    this.current.add(name);
    this.terms.push(leadership.term);
    const end = () => this.current.delete(name);
    if (leadership.signal.aborted) end();
    else leadership.signal.addEventListener('abort', end, { once: true });
  }
}

describe('leader info', () => {
  it('publishes defaults (session id, host, campaign start) plus extra fields; term comes from the lock', async () => {
    const provider = memory();
    const clock = new ManualClock({ wallStart: Date.UTC(2026, 4, 1, 12, 0, 0) });
    const election = new Election(provider, freshKey(), { clock });
    const session = await provider.openSession();
    const leadership = await election.campaign(session, {
      value: { address: 'http://10.0.0.7:8080', shard: 3 },
    });
    const expected: LeaderInfo = {
      id: session.id,
      host: hostname(),
      startedAt: '2026-05-01T12:00:00.000Z',
      address: 'http://10.0.0.7:8080',
      shard: 3,
      term: leadership.lease.fence,
      sessionId: session.id,
    };
    expect(leadership.value).toEqual(expected);
    expect(leadership.term).toBe(leadership.lease.fence);
    expect(await election.leader()).toEqual(expected);
    expect(JSON.parse(leadership.lease.value!)).toEqual({
      id: session.id,
      host: hostname(),
      startedAt: '2026-05-01T12:00:00.000Z',
      address: 'http://10.0.0.7:8080',
      shard: 3,
    });
  });

  it('rejects reserved and mistyped fields before touching the lock', async () => {
    const provider = memory();
    const election = new Election(provider, freshKey());
    const session = await provider.openSession();
    // Untyped callers (plain JS, parsed config) can pass anything; the types already forbid most of it.
    const invalid = [
      { term: 7 },
      { sessionId: 'x' },
      { id: 42 },
      { id: '' },
      { host: ['a'] },
    ] as CandidateInfo[];
    for (const value of invalid) {
      expect(code(await rejection(election.campaign(session, { value })))).toBe('INVALID_ARGUMENT');
    }
    expect(session.leases()).toHaveLength(0);
    expect(await election.leader()).toBeNull();
  });

  it('decodes foreign lock values without failing, and never trusts a published term', () => {
    const holder = (value: string | undefined): LockHolder => ({
      key: 'k',
      sessionId: 's1',
      fence: 9,
      value,
    });
    expect(decodeLeaderInfo(holder('not json'))).toEqual({
      id: 's1',
      startedAt: '',
      term: 9,
      sessionId: 's1',
      value: 'not json',
    });
    expect(decodeLeaderInfo(holder(undefined))).toEqual({
      id: 's1',
      startedAt: '',
      term: 9,
      sessionId: 's1',
    });
    expect(decodeLeaderInfo(holder('[1,2]')).id).toBe('s1');
    expect(decodeLeaderInfo(holder('{"id":"w1","term":1,"sessionId":"forged","startedAt":5}'))).toEqual({
      id: 'w1',
      startedAt: '',
      term: 9,
      sessionId: 's1',
    });
  });

  it('rejects an invalid election key', () => {
    expect(() => new Election(memory(), '')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('campaign', () => {
  it('waits for the leader to resign; the old signal aborts before the next leader is elected', async () => {
    const provider = memory();
    const election = new Election(provider, freshKey());
    const [sa, sb] = [await provider.openSession(), await provider.openSession()];
    const believers = new Believers();
    const a = await election.campaign(sa, { value: { id: 'a' } });
    believers.elected('a', a);
    let bElected = false;
    const pending = election.campaign(sb, { value: { id: 'b' } }).then((b) => {
      bElected = true;
      believers.elected('b', b);
      return b;
    });
    await delay(60);
    expect(bElected).toBe(false);
    expect(await a.resign()).toBe(true);
    expect(code(a.signal.reason)).toBe('LEASE_RELEASED');
    const b = await pending;
    expect(b.term).toBeGreaterThan(a.term);
    expect((await election.leader())?.id).toBe('b');
    expect(a.resign()).toBe(a.resign());
    expect(await a.resign()).toBe(true);
    expect(await b.resign()).toBe(true);
    expect(await election.leader()).toBeNull();
  });

  it('Symbol.asyncDispose resigns', async () => {
    const provider = memory();
    const election = new Election(provider, freshKey());
    const session = await provider.openSession();
    {
      await using leadership = await election.campaign(session);
      expect((await election.leader())?.term).toBe(leadership.term);
    }
    expect(await election.leader()).toBeNull();
    expect(session.leases()).toHaveLength(0);
  });

  it('abort while waiting rejects with ABORTED and leaves no lock behind', async () => {
    const provider = memory();
    const key = freshKey();
    const election = new Election(provider, key);
    const [sa, sb] = [await provider.openSession(), await provider.openSession()];
    const a = await election.campaign(sa);
    const controller = new AbortController();
    const pending = election.campaign(sb, { signal: controller.signal });
    await delay(30);
    controller.abort(new Error('shutting down'));
    const error = await rejection(pending);
    expect(code(error)).toBe('ABORTED');
    expect((error as Error).cause).toEqual(new Error('shutting down'));
    await a.resign();
    await delay(50);
    expect(await election.leader()).toBeNull();
    expect(provider.store.inspect(key)?.holder).toBeUndefined();
    expect(sb.leases()).toHaveLength(0);
  });

  it('an already aborted signal rejects without acquiring', async () => {
    const provider = memory();
    const election = new Election(provider, freshKey());
    const session = await provider.openSession();
    const error = await rejection(election.campaign(session, { signal: AbortSignal.abort() }));
    expect(code(error)).toBe('ABORTED');
    expect(await election.leader()).toBeNull();
  });

  it('hands the lock back when it wins in the same moment the caller aborts', async () => {
    const provider = memory();
    const key = freshKey();
    const election = new Election(provider, key);
    const real = await provider.openSession();
    const controller = new AbortController();
    const racing = delegate(real, {
      acquire: async (k, o) => {
        const lease = await real.acquire(k, { ...(o?.value ? { value: o.value } : {}) });
        controller.abort();
        return lease;
      },
    });
    const error = await rejection(election.campaign(racing, { signal: controller.signal }));
    expect(code(error)).toBe('ABORTED');
    expect(await election.leader()).toBeNull();
    expect(real.leases()).toHaveLength(0);
  });

  it('retries transient backend errors while campaigning', async () => {
    const provider = memory();
    const election = new Election(provider, freshKey());
    const session = await provider.openSession();
    provider.store.failNext(3);
    const leadership = await election.campaign(session);
    expect((await election.leader())?.term).toBe(leadership.term);
  });

  it('rejects on a destroyed session and on a session that already holds the key', async () => {
    const provider = memory();
    const election = new Election(provider, freshKey());
    const session = await provider.openSession();
    await election.campaign(session);
    expect(code(await rejection(election.campaign(session)))).toBe('INVALID_ARGUMENT');
    const other = await provider.openSession();
    await other.destroy();
    expect(code(await rejection(election.campaign(other)))).toBe('CLOSED');
  });

  it('a waiting campaign rejects with SESSION_LOST when its session is lost', async () => {
    const provider = memory();
    const election = new Election(provider, freshKey());
    const [sa, sb] = [await provider.openSession({ ttlMs: 10_000 }), await provider.openSession()];
    await election.campaign(sa);
    const pending = election.campaign(sb);
    await delay(20);
    provider.store.failNext(Number.POSITIVE_INFINITY);
    const error = await rejection(pending);
    provider.store.clearFaults();
    expect(code(error)).toBe('SESSION_LOST');
  });

  it('a leader that cannot renew stops believing within its TTL, before anyone else is elected', async () => {
    const provider = memory();
    const election = new Election(provider, freshKey());
    const sa = await provider.openSession();
    const believers = new Believers();
    const a = await election.campaign(sa);
    believers.elected('a', a);
    const brokeAt = performance.now();
    provider.store.failNext(Number.POSITIVE_INFINITY);
    await until(() => a.signal.aborted, 'leadership signal to abort', TTL * 3);
    expect(performance.now() - brokeAt).toBeLessThanOrEqual(TTL + 150);
    expect(code(a.signal.reason)).toBe('LEASE_LOST');
    provider.store.clearFaults();
    const sb = await provider.openSession();
    const b = await election.campaign(sb);
    believers.elected('b', b);
    expect(b.term).toBeGreaterThan(a.term);
  });
});

describe('proclaim', () => {
  it('merges fields, keeps id/startedAt/term, and is what leader() and observers see', async () => {
    const provider = memory();
    const election = new Election(provider, freshKey());
    const session = await provider.openSession();
    const leadership = await election.campaign(session, {
      value: { id: 'w1', address: 'a:1', role: 'primary' },
    });
    const controller = new AbortController();
    const seen: Array<LeaderInfo | null> = [];
    const observing = (async () => {
      for await (const info of election.observe({ signal: controller.signal })) seen.push(info);
    })();
    await until(() => seen.length === 1, 'first observation');
    const next = await leadership.proclaim({ address: 'a:2', role: undefined, id: undefined, load: [1, 2] });
    expect(next).toEqual({
      id: 'w1',
      host: hostname(),
      startedAt: leadership.value.startedAt,
      address: 'a:2',
      load: [1, 2],
      term: leadership.term,
      sessionId: session.id,
    });
    expect(leadership.value).toEqual(next);
    expect(await election.leader()).toEqual(next);
    await until(() => seen.length === 2, 'observed proclaim');
    expect(seen[1]).toEqual(next);
    expect(seen[1]?.term).toBe(seen[0]?.term);
    controller.abort();
    await observing;
  });

  it('applies concurrent proclaims in call order', async () => {
    const provider = memory();
    const election = new Election(provider, freshKey());
    const leadership = await election.campaign(await provider.openSession());
    const results = await Promise.all([1, 2, 3, 4].map((n) => leadership.proclaim({ n })));
    expect(results.map((r) => r.n)).toEqual([1, 2, 3, 4]);
    expect((await election.leader())?.n).toBe(4);
  });

  it('rejects with LEASE_LOST after resign, and aborts leadership when the lock was taken away', async () => {
    const provider = memory();
    const key = freshKey();
    const election = new Election(provider, key);
    const session = await provider.openSession();
    const first = await election.campaign(session);
    await first.resign();
    expect(code(await rejection(first.proclaim({ x: 1 })))).toBe('LEASE_LOST');
    const second = await election.campaign(session);
    expect(code(await rejection(second.proclaim({ term: 3 })))).toBe('INVALID_ARGUMENT');
    expect(second.signal.aborted).toBe(false);
    provider.store.forceRelease(key);
    await until(() => second.signal.aborted, 'leadership to end after force-release');
    expect(code(second.signal.reason)).toBe('LEASE_LOST');
    expect(code(await rejection(second.proclaim({ x: 2 })))).toBe('LEASE_LOST');
  });

  it('keeps leadership when publishing fails transiently', async () => {
    const provider = memory();
    const election = new Election(provider, freshKey());
    const leadership = await election.campaign(await provider.openSession(), { value: { v: 1 } });
    provider.store.failNext(1);
    expect(code(await rejection(leadership.proclaim({ v: 2 })))).toBe('UNAVAILABLE');
    expect(leadership.signal.aborted).toBe(false);
    expect(leadership.value.v).toBe(1);
    expect((await leadership.proclaim({ v: 3 })).v).toBe(3);
  });
});

describe('observe', () => {
  it('drops stale terms, ended terms and repeats from the underlying watch', async () => {
    const h = (fence: number, value: string): LockHolder => ({
      key: 'k',
      sessionId: `s${fence}`,
      fence,
      value: JSON.stringify({ id: `w${fence}`, startedAt: '', v: value }),
    });
    const script: Array<LockHolder | null> = [
      null,
      null,
      h(5, 'a'),
      h(5, 'a'),
      h(3, 'a'),
      h(5, 'b'),
      null,
      h(5, 'b'),
      h(4, 'x'),
      h(7, 'a'),
      null,
      null,
      h(8, 'a'),
    ];
    const election = new Election(scriptedProvider(script), 'k');
    const seen: Array<string | null> = [];
    for await (const info of election.observe()) seen.push(info ? `${info.term}${info.v}` : null);
    expect(seen).toEqual([null, '5a', '5b', null, '7a', null, '8a']);
  });

  it('follows real handovers in order and ends when its signal aborts', async () => {
    const provider = memory();
    const election = new Election(provider, freshKey());
    const [sa, sb] = [await provider.openSession(), await provider.openSession()];
    const controller = new AbortController();
    const seen: Array<LeaderInfo | null> = [];
    const observing = (async () => {
      for await (const info of election.observe({ signal: controller.signal })) seen.push(info);
    })();
    await until(() => seen.length === 1, 'initial state');
    expect(seen[0]).toBeNull();
    const a = await election.campaign(sa, { value: { id: 'a' } });
    await until(() => seen.at(-1)?.id === 'a', 'a observed');
    const b = election.campaign(sb, { value: { id: 'b' } });
    await a.resign();
    const leaderB = await b;
    await until(() => seen.at(-1)?.id === 'b', 'b observed');
    expect(seen.at(-1)?.term).toBe(leaderB.term);
    const terms = seen.filter((s): s is LeaderInfo => s !== null).map((s) => s.term);
    expect(terms).toEqual([...terms].sort((x, y) => x - y));
    const late: Array<LeaderInfo | null> = [];
    for await (const info of election.observe()) {
      late.push(info);
      break;
    }
    expect(late).toEqual([leaderB.value]);
    controller.abort();
    await observing;
  });
});

describe('runWhileLeader', () => {
  it('runs one task at a time; stopping the leader lets its task finish, then hands over', async () => {
    const provider = memory();
    const key = freshKey();
    const election = new Election(provider, key);
    const believers = new Believers();
    const log: string[] = [];
    const stops = { a: new AbortController(), b: new AbortController() };
    const run = (name: 'a' | 'b') =>
      runWhileLeader(
        provider,
        key,
        async (leadership) => {
          believers.elected(name, leadership);
          log.push(`${name} elected`);
          await new Promise((resolve) =>
            leadership.signal.addEventListener('abort', resolve, { once: true }),
          );
          log.push(`${name} told (${code(leadership.signal.reason)})`);
          await delay(80);
          expect((await election.leader())?.term, 'lock still held while the task winds down').toBe(
            leadership.term,
          );
          log.push(`${name} done`);
        },
        { signal: stops[name].signal, value: { id: name } },
      );
    const runA = run('a');
    await until(async () => (await election.leader())?.id === 'a', 'a leads');
    const runB = run('b');
    await delay(50);
    stops.a.abort();
    await runA;
    await until(async () => (await election.leader())?.id === 'b', 'b leads');
    // Holding the lock comes a moment before the task starts; stop b once its task runs.
    await until(() => log.includes('b elected'), "b's task runs");
    stops.b.abort();
    await runB;
    expect(log).toEqual([
      'a elected',
      'a told (ABORTED)',
      'a done',
      'b elected',
      'b told (ABORTED)',
      'b done',
    ]);
    expect(await election.leader()).toBeNull();
    expect(believers.terms[1]).toBeGreaterThan(believers.terms[0]!);
  });

  it('resigns and campaigns again after the task returns, giving others a turn', async () => {
    const provider = memory();
    const key = freshKey();
    const believers = new Believers();
    const turns: string[] = [];
    const stop = new AbortController();
    const runs = ['a', 'b'].map((name) =>
      runWhileLeader(
        provider,
        key,
        async (leadership) => {
          believers.elected(name, leadership);
          turns.push(name);
          await delay(10);
        },
        { signal: stop.signal, recampaignDelayMs: 40 },
      ),
    );
    await until(() => turns.length >= 6, 'six terms');
    stop.abort();
    await Promise.all(runs);
    expect(new Set(turns)).toEqual(new Set(['a', 'b']));
    expect(believers.terms).toEqual([...believers.terms].sort((x, y) => x - y));
  });

  it('a stop that lands between winning and starting the task never starts the task, and resigns', async () => {
    const provider = memory();
    const key = freshKey();
    const session = await provider.openSession();
    const stop = new AbortController();
    // The stop lands after the campaign's own "aborted while winning" check: when the leadership is built.
    const stopOnWin = new Proxy(session, {
      get(target, property) {
        if (property !== 'acquire') return bound(target, property);
        return async (...args: Parameters<typeof session.acquire>) => {
          const lease = await target.acquire(...args);
          let once = false;
          return new Proxy(lease, {
            get(l, p) {
              if (p === 'sessionId' && !once) {
                once = true;
                stop.abort();
              }
              return bound(l, p);
            },
          });
        };
      },
    });
    let started = 0;
    await runWhileLeader(
      stopOnWin,
      key,
      async () => {
        started++;
      },
      { signal: stop.signal },
    );
    expect(stop.signal.aborted).toBe(true);
    expect(started).toBe(0);
    expect(await new Election(provider, key).leader()).toBeNull();
  });

  it('rejects with the task error when there is no onError, after resigning', async () => {
    const provider = memory();
    const key = freshKey();
    const error = await rejection(
      runWhileLeader(provider, key, async () => {
        throw new Error('boom');
      }),
    );
    expect(error).toEqual(new Error('boom'));
    expect(await new Election(provider, key).leader()).toBeNull();
  });

  it('reports task errors to onError and keeps campaigning', async () => {
    const provider = memory();
    const reported: unknown[] = [];
    const stop = new AbortController();
    let calls = 0;
    const running = runWhileLeader(
      provider,
      freshKey(),
      async () => {
        calls++;
        throw new Error(`boom ${calls}`);
      },
      { signal: stop.signal, onError: (e) => reported.push(e), recampaignDelayMs: 10 },
    );
    await until(() => calls >= 3, 'three attempts');
    stop.abort();
    await running;
    expect(reported.slice(0, 2)).toEqual([new Error('boom 1'), new Error('boom 2')]);
  });

  it('on a provider: survives a lost session by opening a new one', async () => {
    const provider = memory();
    const key = freshKey();
    const election = new Election(provider, key);
    const stop = new AbortController();
    const reported: unknown[] = [];
    const sessions: string[] = [];
    const running = runWhileLeader(
      provider,
      key,
      async (leadership) => {
        sessions.push(leadership.lease.sessionId);
        await new Promise((resolve) => leadership.signal.addEventListener('abort', resolve, { once: true }));
      },
      { signal: stop.signal, onError: (e) => reported.push(e) },
    );
    await until(() => sessions.length === 1, 'first term');
    provider.store.failNext(Number.POSITIVE_INFINITY);
    await delay(TTL * 2);
    provider.store.clearFaults();
    await until(() => sessions.length === 2, 'second term', TTL * 20);
    expect(sessions[1]).not.toBe(sessions[0]);
    expect((await election.leader())?.sessionId).toBe(sessions[1]);
    expect(reported.filter((e) => code(e) === 'SESSION_LOST')).toHaveLength(1);
    stop.abort();
    await running;
    expect(await election.leader()).toBeNull();
  });

  it('on a session: rejects with SESSION_LOST once its session is lost', async () => {
    const provider = memory();
    const session = await provider.openSession();
    const running = runWhileLeader(session, freshKey(), async (leadership) => {
      await new Promise((resolve) => leadership.signal.addEventListener('abort', resolve, { once: true }));
    });
    await delay(30);
    provider.store.failNext(Number.POSITIVE_INFINITY);
    const error = await rejection(running);
    provider.store.clearFaults();
    expect(code(error)).toBe('SESSION_LOST');
  });

  it('a crashed leader is replaced within the TTL', async () => {
    const provider = memory();
    const key = freshKey();
    const election = new Election(provider, key);
    const crashed = await provider.openSession();
    await election.campaign(crashed);
    const stop = new AbortController();
    let electedAt = 0;
    const running = runWhileLeader(
      provider,
      key,
      async (leadership) => {
        electedAt = performance.now();
        await new Promise((resolve) => leadership.signal.addEventListener('abort', resolve, { once: true }));
      },
      { signal: stop.signal },
    );
    await delay(30);
    const crashAt = performance.now();
    (crashed as MemorySession).abandon();
    await until(() => electedAt > 0, 'successor', TTL * 10);
    expect(electedAt - crashAt).toBeLessThanOrEqual(TTL + 300);
    stop.abort();
    await running;
  });

  it('resolves at once when its signal is already aborted', async () => {
    const provider = memory();
    let ran = false;
    await runWhileLeader(
      provider,
      freshKey(),
      () => {
        ran = true;
      },
      { signal: AbortSignal.abort() },
    );
    expect(ran).toBe(false);
  });
});

/** A session that behaves like `inner` except for the overridden methods. */
function delegate(inner: LockSession, overrides: Partial<Pick<LockSession, 'acquire'>>): LockSession {
  return {
    get id() {
      return inner.id;
    },
    get ttlMs() {
      return inner.ttlMs;
    },
    get signal() {
      return inner.signal;
    },
    tryAcquire: (k, o) => inner.tryAcquire(k, o),
    acquire: overrides.acquire ?? ((k, o) => inner.acquire(k, o)),
    withLock: (k, fn, o) => inner.withLock(k, fn, o),
    leases: () => inner.leases(),
    destroy: () => inner.destroy(),
    [Symbol.asyncDispose]: () => inner[Symbol.asyncDispose](),
  } satisfies LockSession;
}

/** A provider whose watch replays `script` and then ends. */
function scriptedProvider(script: Array<LockHolder | null>): LockProvider {
  const unused = () => Promise.reject(new Error('not used'));
  return {
    backend: 'scripted',
    capabilities: {
      nativeWatch: true,
      minTtlMs: 1,
      lockDelay: false,
      list: false,
      forceRelease: false,
      fairQueue: false,
    },
    clock: new ManualClock(),
    openSession: unused,
    getHolder: async () => script.at(-1) ?? null,
    async *watch() {
      yield* script;
    },
    close: async () => {},
    [Symbol.asyncDispose]: async () => {},
  };
}

describe('keeping the process alive', () => {
  // baton's timers are unref'd; a process whose only work is a pending election call must not exit mid-wait.
  const refTimers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

  it('campaign, observe and runWhileLeader hold the process only while they run', async () => {
    const provider = memory();
    const election = new Election(provider, freshKey());
    const [sa, sb] = [await provider.openSession(), await provider.openSession()];
    const base = refTimers();
    const a = await election.campaign(sa);
    expect(refTimers()).toBe(base);
    const waiting = election.campaign(sb);
    await delay(10);
    expect(refTimers()).toBe(base + 1);
    await a.resign();
    const b = await waiting;
    expect(refTimers()).toBe(base);

    const controller = new AbortController();
    const iterator = election.observe({ signal: controller.signal })[Symbol.asyncIterator]();
    expect(refTimers()).toBe(base);
    await iterator.next();
    expect(refTimers()).toBe(base + 1);
    await iterator.return?.();
    expect(refTimers()).toBe(base);
    await b.resign();

    const stop = new AbortController();
    let leading = false;
    const running = runWhileLeader(
      provider,
      election.key,
      async (leadership) => {
        leading = true;
        await new Promise((resolve) => leadership.signal.addEventListener('abort', resolve, { once: true }));
      },
      { signal: stop.signal },
    );
    await until(() => leading, 'leading');
    expect(refTimers()).toBe(base + 1);
    stop.abort();
    await running;
    expect(refTimers()).toBe(base);
  });
});
