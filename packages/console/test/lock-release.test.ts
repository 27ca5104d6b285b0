import { FORCED_RELEASE_RISKS } from '@baton/core';
import { type TestDatabase, testDatabase } from '@baton/test-servers/pglite';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Snapshot } from '../src/index.js';
import { consoleSetup, TOKEN } from './support.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await testDatabase();
});
afterAll(async () => {
  await db?.close();
});
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((fn) => fn()));
});

async function open(options: Parameters<typeof consoleSetup>[1] = {}) {
  const setup = await consoleSetup(db, options);
  cleanups.push(setup.close);
  return setup;
}

function release(url: string, body: unknown, token?: string): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
}

describe('forced lock release', () => {
  it('refuses without the token (401) or with a wrong one (403), logs each, and leaves the holder', async () => {
    const { locks, url, actions } = await open({ token: TOKEN });
    const holder = await locks.openSession();
    const lease = (await holder.tryAcquire('jobs/stuck'))!;
    const missing = await release(url('/api/locks/release'), { key: 'jobs/stuck', force: true });
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const wrong = await release(
      url('/api/locks/release'),
      { key: 'jobs/stuck', force: true },
      'wrong-token-0123456789',
    );
    expect(wrong.status).toBe(403);
    expect(await locks.getHolder('jobs/stuck')).toMatchObject({ sessionId: holder.id, fence: lease.fence });
    expect(actions).toEqual([
      expect.objectContaining({
        action: 'force-release',
        key: 'jobs/stuck',
        outcome: 'denied',
        reason: 'missing',
      }),
      expect.objectContaining({
        action: 'force-release',
        key: 'jobs/stuck',
        outcome: 'denied',
        reason: 'wrong',
      }),
    ]);
  });

  it('is refused on a read-only console (403), and a body without force: true is a 400', async () => {
    const { locks, url, actions } = await open();
    const holder = await locks.openSession();
    await holder.tryAcquire('jobs/stuck');
    const readOnly = await release(url('/api/locks/release'), { key: 'jobs/stuck', force: true }, TOKEN);
    expect(readOnly.status).toBe(403);
    expect(await readOnly.json()).toMatchObject({ error: 'read-only' });
    expect(actions).toEqual([expect.objectContaining({ outcome: 'denied', reason: 'read-only' })]);
    const noForce = await release(url('/api/locks/release'), { key: 'jobs/stuck' }, TOKEN);
    expect(noForce.status).toBe(400);
    expect(await noForce.json()).toMatchObject({ error: 'bad request', field: 'force' });
    const extra = await release(url('/api/locks/release'), { key: 'jobs/stuck', force: true, x: 1 }, TOKEN);
    expect(extra.status).toBe(400);
    expect(await locks.getHolder('jobs/stuck')).not.toBeNull();
  });

  it('releases with the token: the key is free, the next holder has a higher fence, the release is logged', async () => {
    const { locks, url, actions } = await open({ token: TOKEN });
    const holder = await locks.openSession();
    const lease = (await holder.tryAcquire('jobs/stuck'))!;
    const snapshot = (await (await fetch(url('/api/snapshot'))).json()) as Snapshot;
    expect(snapshot.locks).toMatchObject({ forceRelease: true, releaseRisks: FORCED_RELEASE_RISKS });

    const response = await release(url('/api/locks/release'), { key: 'jobs/stuck', force: true }, TOKEN);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      key: 'jobs/stuck',
      released: true,
      previousHolder: { sessionId: holder.id, fence: lease.fence },
    });
    expect(await locks.getHolder('jobs/stuck')).toBeNull();
    const next = await locks.openSession();
    const nextLease = await next.tryAcquire('jobs/stuck');
    expect(nextLease).not.toBeNull();
    expect(nextLease!.fence).toBeGreaterThan(lease.fence);
    expect(actions).toEqual([
      expect.objectContaining({
        action: 'force-release',
        key: 'jobs/stuck',
        outcome: 'released',
        previousHolder: { sessionId: holder.id, fence: lease.fence },
      }),
    ]);
    // A key nobody holds: nothing released, said so.
    const none = await release(url('/api/locks/release'), { key: 'jobs/none', force: true }, TOKEN);
    expect(await none.json()).toEqual({ key: 'jobs/none', released: false, previousHolder: null });
    expect(actions.at(-1)).toMatchObject({ key: 'jobs/none', outcome: 'not-held' });
  });

  it('answers 409 without a lock backend', async () => {
    const { url } = await open({ token: TOKEN, locks: undefined });
    const response = await release(url('/api/locks/release'), { key: 'jobs/stuck', force: true }, TOKEN);
    expect(response.status).toBe(409);
    expect(await response.json()).toMatchObject({ error: 'unsupported' });
  });
});
