import { BatonError, type LockProvider, redact } from '@baton/core';
import type { PgPool, PostgresTaskSource } from '@baton/source-postgres';
import { type Context, Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { Asset } from './assets.js';
import type { TokenCheck } from './auth.js';
import { registerLockRelease } from './lock-release.js';
import { type ConsoleQueries, readPage, type TaskPage, toSummary } from './queries.js';
import { badRequest, listQuerySchema, taskParamsSchema } from './requests.js';
import type { Refresher } from './snapshot.js';

/** Why an action was denied: no token configured, no or malformed header, wrong token. */
export type DenialReason = 'read-only' | 'missing' | 'wrong';

/** One action taken (or refused) through the console: every one is logged. */
export type ActionLogEntry =
  | {
      action: 'retry';
      taskId: string;
      outcome: 'retried' | 'not-retryable' | 'not-found' | 'denied';
      reason?: DenialReason;
      /** Remote address of the request, when known. */
      remote?: string | undefined;
    }
  | {
      action: 'force-release';
      key: string;
      outcome: 'released' | 'not-held' | 'unsupported' | 'denied';
      reason?: DenialReason;
      /** The holder the release removed (session and fence), when there was one. */
      previousHolder?: { sessionId: string; fence: number } | null;
      remote?: string | undefined;
    };

export interface AppContext {
  source: PostgresTaskSource;
  db: PgPool;
  sql: ConsoleQueries;
  refresher: Refresher;
  /** The lock backend (forced releases go through it); undefined: none configured. */
  locks: LockProvider | undefined;
  auth: TokenCheck;
  assets: Record<string, Asset>;
  onAction: (entry: ActionLogEntry) => void;
  /** Ends every open event stream (the server is closing). */
  closing: AbortSignal;
}

/**
 * No inline script or style, nothing from elsewhere: with `textContent` rendering on the page, a payload or
 * error that holds markup cannot run.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The console's HTTP routes (hono). */
export function createApp(ctx: AppContext): Hono {
  const app = new Hono();

  app.use(async (c, next) => {
    await next();
    c.header('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Referrer-Policy', 'no-referrer');
    c.header('X-Frame-Options', 'DENY');
    if (!c.res.headers.has('Cache-Control')) c.header('Cache-Control', 'no-store');
  });

  for (const [path, asset] of Object.entries(ctx.assets)) {
    app.get(path, (c) => c.body(asset.body, 200, { 'Content-Type': asset.type }));
  }

  app.get('/api/snapshot', async (c) => c.json(await ctx.refresher.current()));

  app.get('/api/events', (c) =>
    streamSSE(c, async (stream) => {
      // The newest event only: a page that reads slowly skips to the latest state instead of queueing.
      let pending: { event: string; id?: string; data: string } | undefined;
      let writing = false;
      const send = async (event: { event: string; id?: string; data: string }) => {
        pending = event;
        if (writing) return;
        writing = true;
        try {
          while (pending && !stream.aborted) {
            const next = pending;
            pending = undefined;
            await stream.writeSSE(next);
          }
        } finally {
          writing = false;
        }
      };
      const done = new Promise<void>((resolve) => {
        stream.onAbort(resolve);
        ctx.closing.addEventListener('abort', () => resolve(), { once: true });
      });
      const unsubscribe = ctx.refresher.subscribe(
        (snapshot) => {
          send({ event: 'snapshot', id: String(snapshot.seq), data: JSON.stringify(snapshot) }).catch(
            () => {},
          );
        },
        (failure) => {
          send({ event: 'refresh-error', data: JSON.stringify(failure) }).catch(() => {});
        },
      );
      try {
        await done;
      } finally {
        unsubscribe();
      }
    }),
  );

  app.get('/api/tasks', async (c) => {
    const parsed = listQuerySchema.safeParse(c.req.query());
    if (!parsed.success) return c.json(badRequest(parsed.error), 400);
    const { q, status, kind, before, limit } = parsed.data;
    if (q !== undefined) return c.json(await search(ctx, q));
    const page: TaskPage = await readPage(ctx.db, ctx.sql, { status, kind, before, limit });
    return c.json(page);
  });

  app.get('/api/tasks/:id', async (c) => {
    const parsed = taskParamsSchema.safeParse(c.req.param());
    if (!parsed.success) return c.json(badRequest(parsed.error), 400);
    try {
      const task = await ctx.source.get(parsed.data.id);
      if (!task) return c.json({ error: 'not found', message: `no task ${parsed.data.id}` }, 404);
      return c.json(task);
    } catch (error) {
      if (error instanceof BatonError && error.code === 'TASK_INVALID') {
        return c.json({ error: 'invalid task row', message: error.message }, 422);
      }
      throw error;
    }
  });

  app.post('/api/tasks/:id/retry', async (c) => {
    const parsed = taskParamsSchema.safeParse(c.req.param());
    if (!parsed.success) return c.json(badRequest(parsed.error), 400);
    const taskId = parsed.data.id;
    const remote = remoteOf(c.env);
    const verdict = ctx.auth.check(c.req.header('Authorization'));
    if (verdict !== 'ok') {
      ctx.onAction({ action: 'retry', taskId, outcome: 'denied', reason: verdict, remote });
      return deny(c, verdict);
    }
    // The same fenced path as `baton tasks retry`: only failed or dead tasks reset, the fence is kept.
    const count = await ctx.source.retry(taskId);
    if (count === 1) {
      ctx.onAction({ action: 'retry', taskId, outcome: 'retried', remote });
      ctx.refresher.invalidate();
      return c.json({ id: taskId, retried: true });
    }
    const task = await ctx.source.get(taskId).catch(() => null);
    if (!task) {
      ctx.onAction({ action: 'retry', taskId, outcome: 'not-found', remote });
      return c.json({ error: 'not found', message: `no task ${taskId}` }, 404);
    }
    ctx.onAction({ action: 'retry', taskId, outcome: 'not-retryable', remote });
    return c.json(
      {
        error: 'not retryable',
        message: `task ${taskId} is ${task.status}: only failed or dead tasks can be retried`,
        status: task.status,
      },
      409,
    );
  });

  registerLockRelease(app, ctx);

  app.notFound((c) => c.json({ error: 'not found', message: `no route ${c.req.method} ${c.req.path}` }, 404));
  app.onError((error, c) => {
    const message = redact(error instanceof Error ? error.message : String(error));
    const status = error instanceof BatonError && error.code === 'UNAVAILABLE' ? 503 : 500;
    return c.json({ error: 'server error', message }, status);
  });
  return app;
}

/** A search by exact id or idempotency key: at most two primary/unique index probes. */
async function search(ctx: AppContext, q: string): Promise<TaskPage> {
  const found = new Map<string, ReturnType<typeof toSummary>>();
  if (/^[1-9][0-9]{0,18}$/.test(q) && BigInt(q) <= 9_223_372_036_854_775_807n) {
    for (const row of (await ctx.db.query({ text: ctx.sql.byId, values: [q] })).rows) {
      const task = toSummary(row);
      found.set(task.id, task);
    }
  }
  for (const row of (await ctx.db.query({ text: ctx.sql.byKey, values: [q] })).rows) {
    const task = toSummary(row);
    found.set(task.id, task);
  }
  return { tasks: [...found.values()], next: null, scanned: found.size };
}

/** The answer to a request whose token was refused: 403 read-only, 401 without a token, 403 wrong token. */
export function deny(c: Context, verdict: DenialReason): Response {
  if (verdict === 'read-only') {
    return c.json(
      {
        error: 'read-only',
        message: 'this console is read-only: start it with BATON_CONSOLE_TOKEN set to allow actions',
      },
      403,
    );
  }
  if (verdict === 'missing') {
    c.header('WWW-Authenticate', 'Bearer realm="baton console"');
    return c.json({ error: 'unauthorized', message: 'send Authorization: Bearer <token>' }, 401);
  }
  return c.json({ error: 'forbidden', message: 'wrong token' }, 403);
}

export function remoteOf(env: unknown): string | undefined {
  const incoming = (env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming;
  return incoming?.socket?.remoteAddress;
}
