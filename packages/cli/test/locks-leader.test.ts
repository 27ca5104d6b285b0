import { createLockProvider, Election, type LockProvider, semaphore } from '@baton/core';
import { type ConsulTestServer, startConsulTestServer } from '@baton/test-servers/consul-server';
import { type DynaliteServer, startDynalite } from '@baton/test-servers/dynalite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baton, Running, tempFiles } from './helpers.js';

describe('locks and leader against Consul', () => {
  let consul: ConsulTestServer;
  let provider: LockProvider;
  let env: Record<string, string>;

  beforeAll(async () => {
    consul = await startConsulTestServer();
    env = { BATON_BACKEND: 'consul', CONSUL_HTTP_ADDR: consul.url };
    provider = await createLockProvider(env);
  });
  afterAll(async () => {
    await provider?.close();
    await consul?.close();
  });

  it('list and show report the holder, its fence and value', async () => {
    const session = await provider.openSession();
    const lease = await session.tryAcquire('jobs/nightly', { value: 'host-a' });
    expect(lease).not.toBeNull();
    try {
      const listed = await baton(['--json', 'locks', 'list', 'jobs/'], { env });
      expect(listed.code).toBe(0);
      const [row] = JSON.parse(listed.stdout) as Array<Record<string, unknown>>;
      const backend = await provider.getHolder('jobs/nightly');
      expect(row).toEqual({
        key: 'jobs/nightly',
        sessionId: session.id,
        fence: lease!.fence,
        value: 'host-a',
        acquiredAt: new Date(backend!.acquiredAt!).toISOString(),
        acquiredAtSource: 'holder',
        ageMs: expect.any(Number),
        leaseRemainingMs: null,
        leaseRemainingAtMostMs: backend!.leaseRemainingAtMostMs,
      });
      const shown = await baton(['locks', 'show', 'jobs/nightly'], { env });
      expect(shown.stdout).toContain(`session  ${session.id}`);
      expect(shown.stdout).toContain(`fence    ${lease!.fence}`);
      expect(shown.stdout).toMatch(/taken {4}\d{4}-\d\d-\d\dT.*Z \(.* ago, holder clock\)/);
      expect(shown.stdout).toMatch(/lease {4}≤ .* left if its holder stops renewing now/);
      expect(shown.stdout).toContain('waiting  none');
      const free = await baton(['--json', 'locks', 'show', 'jobs/never'], { env });
      expect(JSON.parse(free.stdout)).toBeNull();
      const table = await baton(['locks', 'list'], { env });
      expect(table.stdout).toMatch(/^KEY\s+SESSIONID\s+FENCE\s+AGE\s+LEASELEFT\s+VALUE\njobs\/nightly\s/);
    } finally {
      await session.destroy();
    }
  });

  it('release --force --yes-i-understand frees the key, warns what it breaks, and the next fence is higher', async () => {
    const holder = await provider.openSession();
    const lease = await holder.tryAcquire('jobs/stuck');
    expect(lease).not.toBeNull();
    try {
      const result = await baton(['locks', 'release', '--force', '--yes-i-understand', 'jobs/stuck'], {
        env,
      });
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(
        `jobs/stuck: released (was held by session ${holder.id}, fence ${lease!.fence})`,
      );
      expect(result.stderr).toContain('keeps believing it holds the lock');
      expect(await provider.getHolder('jobs/stuck')).toBeNull();
      const next = await provider.openSession();
      try {
        const taken = await next.tryAcquire('jobs/stuck');
        expect(taken?.fence).toBeGreaterThan(lease!.fence);
      } finally {
        await next.destroy();
      }
      const again = await baton(
        ['--json', 'locks', 'release', '--force', '--yes-i-understand', 'jobs/none'],
        { env },
      );
      expect(JSON.parse(again.stdout)).toEqual({ key: 'jobs/none', released: false, previousHolder: null });
    } finally {
      await holder.destroy();
    }
  });

  it("a config file's lock section picks the backend when the environment does not", async () => {
    const files = await tempFiles({
      'baton.json': JSON.stringify({ lock: { backend: 'consul', address: consul.url, prefix: 'cfgfile/' } }),
    });
    try {
      const fromFile = await baton(['--json', '--config', 'baton.json', 'locks', 'list'], { cwd: files.dir });
      expect(fromFile.code, fromFile.stderr).toBe(0);
      expect(JSON.parse(fromFile.stdout)).toEqual([]);
      const badField = await baton(['--config', 'baton.json', 'locks', 'list'], {
        cwd: files.dir,
        env: { BATON_BACKEND: 'consul', CONSUL_HTTP_ADDR: 'not a url at all' },
      });
      expect(badField.code).toBe(2);
      expect(badField.stderr).toContain('CONSUL_HTTP_ADDR');
    } finally {
      await files.cleanup();
    }
  });

  it('semaphore show lists the permits, their fences and limits, and flags mixed limits', async () => {
    const name = 'limit/partner-api';
    const empty = await baton(['--json', 'semaphore', 'show', name], { env });
    expect(empty.code, empty.stderr).toBe(0);
    expect(JSON.parse(empty.stdout)).toMatchObject({ name, held: 0, limit: null, free: null, permits: [] });
    const sessions = [await provider.openSession(), await provider.openSession()];
    try {
      const three = await semaphore(provider, name, { limit: 3 }).tryAcquire(sessions[0]!, { value: 'w1' });
      const two = await semaphore(provider, name, { limit: 2 }).tryAcquire(sessions[1]!);
      expect(three && two).toBeTruthy();
      const checked = await baton(['--json', 'semaphore', 'show', name, '--limit', '3'], { env });
      const view = JSON.parse(checked.stdout) as { permits: Array<{ slot: number }> } & Record<
        string,
        unknown
      >;
      expect(view).toMatchObject({
        held: 2,
        limit: 3,
        free: 1,
        limitsSeen: [2, 3],
        waiters: { queued: true, head: null, behind: 0 },
      });
      expect(view.permits).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ slot: three!.slot, fence: three!.fence, limit: 3, value: 'w1' }),
          expect.objectContaining({
            slot: two!.slot,
            fence: two!.fence,
            limit: 2,
            sessionId: sessions[1]!.id,
          }),
        ]),
      );
      const text = await baton(['semaphore', 'show', name], { env });
      expect(text.stdout).toContain(`${name}: 2 permit(s) held`);
      expect(text.stdout).toContain('warning: holders took their permits with limits 2, 3');
      expect(text.stdout).toMatch(/SLOT\s+SESSIONID\s+FENCE\s+LIMIT\s+VALUE/);
      const bad = await baton(['semaphore', 'show', name, '--limit', '0'], { env });
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('--limit');
    } finally {
      for (const session of sessions) await session.destroy();
    }
  });

  it('locks show and semaphore show name who waits in line, in order', async () => {
    const [holder, first, second] = [
      await provider.openSession(),
      await provider.openSession(),
      await provider.openSession(),
    ];
    const stop = new AbortController();
    try {
      const lease = await holder.tryAcquire('jobs/busy');
      const waits: Array<Promise<unknown>> = [];
      for (const [n, session] of [first, second].entries()) {
        waits.push(session.acquire('jobs/busy', { signal: stop.signal }).catch(() => null));
        await until(async () => (await provider.waiters!('jobs/busy')).length === n + 1);
      }
      const jobs = semaphore(provider, 'limit/one', { limit: 1 });
      const permit = await jobs.tryAcquire(holder);
      waits.push(jobs.acquire(first, { signal: stop.signal }).catch(() => null));
      await until(async () => (await provider.getHolder('limit/one/line')) !== null);
      waits.push(jobs.acquire(second, { signal: stop.signal }).catch(() => null));
      await until(async () => (await provider.waiters!('limit/one/line')).length === 1);
      const line = await provider.waiters!('jobs/busy');
      const shown = await baton(['locks', 'show', 'jobs/busy'], { env });
      expect(shown.stdout).toContain(`waiting  2 (1. ${line[0]!.sessionId}, 2. ${line[1]!.sessionId})`);
      const json = JSON.parse((await baton(['--json', 'locks', 'show', 'jobs/busy'], { env })).stdout);
      expect(json.waiters.map((w: { sessionId: string }) => w.sessionId)).toEqual(
        line.map((w) => w.sessionId),
      );
      const head = (await provider.getHolder('limit/one/line'))!.sessionId;
      const sem = JSON.parse((await baton(['--json', 'semaphore', 'show', 'limit/one'], { env })).stdout);
      expect(sem).toMatchObject({ held: 1, limit: 1, free: 0, waiters: { queued: true, head, behind: 1 } });
      const text = await baton(['semaphore', 'show', 'limit/one'], { env });
      expect(text.stdout).toContain(`waiters: session ${head} is first in line (1 behind it)`);
      stop.abort();
      await Promise.all(waits);
      await permit?.release();
      await lease?.release();
    } finally {
      stop.abort();
      for (const session of [holder, first, second]) await session.destroy();
    }
  });

  it('leader show and leader watch follow an election', async () => {
    const election = new Election(provider, 'svc/reports/leader');
    const session = await provider.openSession();
    try {
      const none = await baton(['--json', 'leader', 'show', 'svc/reports/leader'], { env });
      expect(JSON.parse(none.stdout)).toBeNull();
      const leadership = await election.campaign(session, {
        value: { id: 'reports-1', address: 'http://10.0.0.7:8080' },
      });
      const shown = await baton(['--json', 'leader', 'show', 'svc/reports/leader'], { env });
      expect(JSON.parse(shown.stdout)).toMatchObject({
        id: 'reports-1',
        address: 'http://10.0.0.7:8080',
        term: leadership.term,
        sessionId: session.id,
      });
      const watch = new Running(['--json', 'leader', 'watch', 'svc/reports/leader', '--count', '2'], { env });
      const first = await watch.waitFor((line) => line.key === 'svc/reports/leader');
      expect((first.leader as { id: string }).id).toBe('reports-1');
      await leadership.resign();
      expect(await watch.exited).toBe(0);
      expect(watch.lines.at(-1)).toMatchObject({ key: 'svc/reports/leader', leader: null });
    } finally {
      await session.destroy();
    }
  });
});

describe('DynamoDB administration against dynalite', () => {
  let dynalite: DynaliteServer;
  let env: Record<string, string>;

  beforeAll(async () => {
    dynalite = await startDynalite();
    env = {
      BATON_BACKEND: 'dynamodb',
      AWS_ENDPOINT_URL_DYNAMODB: dynalite.endpoint,
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
    };
  });
  afterAll(() => dynalite?.close());

  it('create-table creates the table once; lock commands then work', async () => {
    const missing = await baton(['locks', 'list'], { env });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('baton dynamodb create-table');
    const created = await baton(['--json', 'dynamodb', 'create-table'], { env });
    expect(created.code).toBe(0);
    expect(JSON.parse(created.stdout)).toEqual({ table: 'baton_locks', result: 'created', status: 'ACTIVE' });
    const again = await baton(['dynamodb', 'create-table'], { env });
    expect(again.stdout).toContain('table baton_locks already exists (ACTIVE)');
    const listed = await baton(['--json', 'locks', 'list'], { env });
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([]);
  });

  it('create-table --table names another table', async () => {
    const created = await baton(['--json', 'dynamodb', 'create-table', '--table', 'other_locks'], { env });
    expect(JSON.parse(created.stdout)).toMatchObject({ table: 'other_locks', result: 'created' });
  });
});

async function until(condition: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met within 20 s');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
