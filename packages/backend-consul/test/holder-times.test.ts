import { parseDuration } from '@baton/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConsulEnv, rawDelete, rawEntry, startConsulEnv, testProvider } from './harness.js';

let env: ConsulEnv;
beforeAll(async () => {
  env = await startConsulEnv();
});
afterAll(async () => {
  await env?.close();
});

/** The session's TTL as the agent reports it (`/v1/session/info`), in ms. */
async function rawSessionTtl(id: string): Promise<number> {
  const response = await fetch(`${env.url}/v1/session/info/${id}`, {
    headers: env.token ? { 'x-consul-token': env.token } : {},
  });
  const [info] = (await response.json()) as Array<{ TTL: string }>;
  return parseDuration(info?.TTL) ?? Number.NaN;
}

/** Writes a key with `?acquire` straight at the agent (as another client, or an older baton, could). */
async function rawAcquire(consulKey: string, session: string, value: string): Promise<void> {
  const response = await fetch(`${env.url}/v1/kv/${encodeURI(consulKey)}?acquire=${session}`, {
    method: 'PUT',
    body: value,
    headers: env.token ? { 'x-consul-token': env.token } : {},
  });
  expect(await response.text()).toBe('true');
}

describe('holder times on Consul', () => {
  it('acquiredAt is the .since entry the acquiring txn wrote; the lease bound is 2 × the TTL Consul reports', async () => {
    const provider = testProvider(env);
    try {
      const session = await provider.openSession();
      const before = Date.now();
      const lease = await session.tryAcquire('times/a', { value: 'v' });
      const after = Date.now();
      const since = await rawEntry(env, `${provider.prefix}times/a/.since/${session.id}`);
      expect(since).toMatchObject({ Session: session.id, ModifyIndex: lease!.fence });
      const stamped = Number(since!.Value);
      expect(stamped).toBeGreaterThanOrEqual(before);
      expect(stamped).toBeLessThanOrEqual(after);
      const holder = await provider.getHolder('times/a');
      expect(holder).toMatchObject({
        fence: lease!.fence,
        acquiredAt: stamped,
        acquiredAtSource: 'holder',
        leaseRemainingAtMostMs: 2 * (await rawSessionTtl(session.id)),
      });
      expect(holder?.leaseRemainingMs).toBeUndefined();
    } finally {
      await provider.close();
    }
  });

  it('a holder without a .since entry (an older baton) is still reported, without acquiredAt', async () => {
    const provider = testProvider(env);
    try {
      const session = await provider.openSession();
      const lease = await session.tryAcquire('times/old');
      await rawDelete(env, `${provider.prefix}times/old/.since/${session.id}`);
      const holder = await provider.getHolder('times/old');
      expect(holder).toMatchObject({ sessionId: session.id, fence: lease!.fence });
      expect(holder).not.toHaveProperty('acquiredAt');
      expect(holder).not.toHaveProperty('acquiredAtSource');
      expect(holder?.leaseRemainingAtMostMs).toBeGreaterThan(0);
      const [listed] = await provider.list('times/old');
      expect(listed).not.toHaveProperty('acquiredAt');
    } finally {
      await provider.close();
    }
  });

  it('a .since entry not written by the acquisition itself is ignored', async () => {
    const provider = testProvider(env);
    try {
      const session = await provider.openSession();
      const lease = await session.tryAcquire('times/stale');
      // Rewritten later: its ModifyIndex is no longer the fence.
      await rawAcquire(`${provider.prefix}times/stale/.since/${session.id}`, session.id, '12345');
      const holder = await provider.getHolder('times/stale');
      expect(holder).toMatchObject({ fence: lease!.fence });
      expect(holder).not.toHaveProperty('acquiredAt');
    } finally {
      await provider.close();
    }
  });

  it('release and force-release remove the .since entries', async () => {
    const provider = testProvider(env);
    try {
      const session = await provider.openSession();
      const released = await session.tryAcquire('times/released');
      await released!.release();
      expect(await rawEntry(env, `${provider.prefix}times/released/.since/${session.id}`)).toBeUndefined();
      await session.tryAcquire('times/forced');
      expect(await provider.forceRelease('times/forced')).toBe(true);
      expect(await rawEntry(env, `${provider.prefix}times/forced/.since/${session.id}`)).toBeUndefined();
    } finally {
      await provider.close();
    }
  });
});
