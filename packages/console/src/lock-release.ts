import { BatonError, canForceRelease, forceReleaseLock } from '@baton/core';
import type { Hono } from 'hono';
import { type AppContext, deny, remoteOf } from './app.js';
import { badRequest, releaseBodySchema } from './requests.js';

/**
 * `POST /api/locks/release` with `{"key": ..., "force": true}`: the forced release of
 * `baton locks release --force --yes-i-understand <key>` (core's `forceReleaseLock`), token required, logged.
 * The holder is not told and keeps its fence until someone acquires the key: the page asks for confirmation
 * with these risks first.
 */
export function registerLockRelease(app: Hono, ctx: AppContext): void {
  app.post('/api/locks/release', async (c) => {
    const raw = await c.req.json().catch(() => undefined);
    const parsed = releaseBodySchema.safeParse(raw);
    if (!parsed.success) return c.json(badRequest(parsed.error), 400);
    const { key } = parsed.data;
    const remote = remoteOf(c.env);
    const verdict = ctx.auth.check(c.req.header('Authorization'));
    if (verdict !== 'ok') {
      ctx.onAction({ action: 'force-release', key, outcome: 'denied', reason: verdict, remote });
      return deny(c, verdict);
    }
    const locks = ctx.locks;
    if (!locks || !canForceRelease(locks)) {
      ctx.onAction({ action: 'force-release', key, outcome: 'unsupported', remote });
      const message = locks
        ? `the '${locks.backend}' backend does not support forced release`
        : 'this console has no lock backend configured';
      return c.json({ error: 'unsupported', message }, 409);
    }
    try {
      const { released, previousHolder } = await forceReleaseLock(locks, key);
      const previous = previousHolder
        ? { sessionId: previousHolder.sessionId, fence: previousHolder.fence }
        : null;
      ctx.onAction({
        action: 'force-release',
        key,
        outcome: released ? 'released' : 'not-held',
        previousHolder: previous,
        remote,
      });
      ctx.refresher.invalidate();
      return c.json({ key, released, previousHolder: previous });
    } catch (error) {
      if (error instanceof BatonError && error.code === 'INVALID_ARGUMENT') {
        return c.json({ error: 'bad request', field: 'key', message: `key: ${error.message}` }, 400);
      }
      throw error;
    }
  });
}
