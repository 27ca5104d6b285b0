import { rememberSecret } from '@baton/core';
import { type FaultProxy, startFaultProxy } from '@baton/test-servers/fault-proxy';
import { type TestDatabase, testDatabase } from '@baton/test-servers/pglite';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RefreshFailure, Snapshot } from '../src/index.js';
import { consoleSetup } from './support.js';

let db: TestDatabase;
let proxy: FaultProxy;
beforeAll(async () => {
  db = await testDatabase();
  proxy = await startFaultProxy(db.connectionString);
});
afterAll(async () => {
  await proxy?.close();
  await db?.close();
});

const PASSWORD = 'pw-not-for-the-page-0123';

/** Reads server-sent events from `url` into `events` until `signal` aborts. */
async function listen(url: string, events: Array<{ event: string; data: string }>, signal: AbortSignal) {
  const response = await fetch(url, { signal });
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
        const data = /^data: (.*)$/m.exec(block)?.[1] ?? '';
        events.push({ event, data });
        end = buffer.indexOf('\n\n');
      }
    }
  } catch {
    // aborted
  }
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 20));
}

describe('refresh errors', () => {
  it('pushes the failure (what failed, no secret) while the database refuses, then live snapshots again', async () => {
    // The console reads through a proxy it can be cut off by; the URL carries a password.
    const through = new URL(db.connectionString);
    through.host = proxy.address;
    // PGlite takes any password; a real server keeps its own (DATABASE_URL).
    if (!through.password) through.password = PASSWORD;
    const password = decodeURIComponent(through.password);
    rememberSecret(password);
    const viaProxy = new pg.Pool({ connectionString: through.toString(), max: 2 });
    viaProxy.on('error', () => {});
    const setup = await consoleSetup(db, { db: viaProxy, refreshMs: 250 });
    const events: Array<{ event: string; data: string }> = [];
    const controller = new AbortController();
    const listening = listen(setup.url('/api/events'), events, controller.signal);
    try {
      await until(() => events.some((e) => e.event === 'snapshot'));

      proxy.setMode('reset');
      await until(() => events.some((e) => e.event === 'refresh-error'));
      const failure = JSON.parse(events.find((e) => e.event === 'refresh-error')!.data) as RefreshFailure;
      expect(failure.message).toMatch(/^reading the database failed: /);
      expect(failure.failures).toBeGreaterThanOrEqual(1);
      expect(failure.lastGoodAt).toEqual(expect.any(Number));
      const everything = JSON.stringify(events);
      expect(everything).not.toContain(`:${through.password}@`);
      expect(everything).not.toContain(through.toString());
      // A password short enough to be an ordinary word is masked by position only (core's redact).
      if (password.length >= 8) expect(everything).not.toContain(password);
      expect(setup.console.refresher.failure).toBeDefined();
      // The API says it too, without the password.
      const api = await fetch(setup.url('/api/snapshot'));
      expect(api.status).toBeGreaterThanOrEqual(500);
      const answer = await api.text();
      expect(answer).not.toContain(`:${through.password}@`);
      if (password.length >= 8) expect(answer).not.toContain(password);
      // The failures keep coming while it lasts, each counted.
      await until(() => events.filter((e) => e.event === 'refresh-error').length >= 2);
      const last = JSON.parse(
        events.filter((e) => e.event === 'refresh-error').at(-1)!.data,
      ) as RefreshFailure;
      expect(last.failures).toBeGreaterThanOrEqual(2);

      const seen = events.length;
      proxy.setMode('pass');
      await until(() => events.slice(seen).some((e) => e.event === 'snapshot'));
      const recovered = JSON.parse(events.slice(seen).find((e) => e.event === 'snapshot')!.data) as Snapshot;
      expect(recovered.counts.open).toEqual([]);
      expect(setup.console.refresher.failure).toBeUndefined();
    } finally {
      controller.abort();
      await listening;
      await setup.close();
      await viaProxy.end().catch(() => {});
    }
  });
});
