/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Election, type LockSession, semaphore, type TaskHandler, Worker } from '@baton/core';
import { startFaultProxy } from '@baton/test-servers/fault-proxy';
import { type TestDatabase, testDatabase } from '@baton/test-servers/pglite';
import pg from 'pg';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findChromium, noChromiumMessage } from './chromium.js';
import { consoleSetup, databaseCounts, TOKEN } from './support.js';

const chromium = findChromium();
const EVIL_HTML = '<img src=x onerror="window.__pwned=1">';
const EVIL_SCRIPT = '<script>window.__pwned=2</script>';
/** `UPDATE_SCREENSHOTS=1` writes the screenshots into docs/console/; otherwise into a temporary directory. */
const DOCS_DIR = fileURLToPath(new URL('../../../docs/console/', import.meta.url));

if (!chromium) {
  // Never pass silently: the run lists this test as skipped, and its name says why and what to do.
  it.skip(noChromiumMessage(), () => {});
  // The default reporter shows a skipped file without its tests' names: say it on stderr as well.
  process.stderr.write(`console: ${noChromiumMessage()}\n`);
} else {
  describe('the console in Chromium', () => {
    let db: TestDatabase;
    let setup: Awaited<ReturnType<typeof consoleSetup>>;
    let browser: Browser;
    let worker: Worker;
    let working: Promise<void>;
    let shots: string;
    let waiter: LockSession;
    let waiting: Promise<unknown>;
    const stopWaiting = new AbortController();
    const runs = new Map<string, number>();
    let fixed = false;
    const ids: Record<'ok' | 'flaky' | 'evil', string[]> = { ok: [], flaky: [], evil: [] };

    const handler: TaskHandler = async ({ task }) => {
      runs.set(task.id, (runs.get(task.id) ?? 0) + 1);
      if (task.kind === 'evil') throw new Error(`${EVIL_HTML} ${EVIL_SCRIPT}`);
      if (task.kind === 'flaky' && !fixed) throw new Error('upstream said 503');
      return { ok: true, kind: task.kind };
    };

    beforeAll(async () => {
      shots =
        process.env.UPDATE_SCREENSHOTS === '1' ? DOCS_DIR : await mkdtemp(join(tmpdir(), 'console-shots-'));
      await mkdir(shots, { recursive: true });
      db = await testDatabase();
      setup = await consoleSetup(db, {
        token: TOKEN,
        refreshMs: 250,
        finishedCountMs: 250,
        retention: { doneAfterMs: 0 },
      });
      const { source, locks } = setup;
      ids.ok = await source.enqueue(
        Array.from({ length: 24 }, (_, n) => ({ kind: n % 3 ? 'email' : 'report', payload: { n } })),
      );
      ids.flaky = await source.enqueue(
        Array.from({ length: 3 }, (_, n) => ({ kind: 'flaky', maxAttempts: 1, payload: { n } })),
      );
      ids.evil = await source.enqueue({
        kind: 'evil',
        maxAttempts: 1,
        payload: { html: EVIL_HTML, script: EVIL_SCRIPT },
      });
      // Beats every second, so the workers view has its counters and a rate by the time the page is read.
      worker = new Worker({
        locks,
        source,
        handler,
        concurrency: 4,
        schedule: { every: 50 },
        heartbeatEveryMs: 1_000,
      });
      working = worker.run();
      const session = await locks.openSession();
      await new Election(locks, 'svc/reports/leader').campaign(session, {
        value: { id: 'reporter-1', address: 'http://10.0.0.7:8080' },
      });
      await session.tryAcquire('reports/nightly', { value: 'reporter-1' });
      // A semaphore with one of its two permits held, its holder's text an HTML fragment.
      await semaphore(locks, 'limit/partner-api', { limit: 2 }).tryAcquire(session, { value: EVIL_HTML });
      // A key with a line: one session waits for it until the end.
      await session.tryAcquire('reports/weekly', { value: 'reporter-1' });
      waiter = await locks.openSession();
      waiting = waiter.acquire('reports/weekly', { signal: stopWaiting.signal }).catch(() => null);
      await until(async () => (await locks.waiters('reports/weekly')).length === 1);
      await until(async () => (await openTasks(setup)) === 0);
      browser = await puppeteer.launch({
        executablePath: chromium,
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
      });
    });

    afterAll(async () => {
      stopWaiting.abort();
      await waiting;
      await browser?.close();
      await worker?.stop();
      await working;
      await setup?.close();
      await db?.close();
      if (process.env.UPDATE_SCREENSHOTS !== '1' && shots) await rm(shots, { recursive: true, force: true });
    });

    async function openPage(): Promise<{
      page: Page;
      dialogs: string[];
      errors: string[];
      /** What the next dialogs answer: dismiss (default) or accept. */
      answer: { accept: boolean };
    }> {
      const page = await browser.newPage();
      await page.setViewport({ width: 1400, height: 1000 });
      const dialogs: string[] = [];
      const errors: string[] = [];
      const answer = { accept: false };
      page.on('dialog', (dialog) => {
        dialogs.push(dialog.message());
        (answer.accept ? dialog.accept() : dialog.dismiss()).catch(() => {});
      });
      page.on('pageerror', (error) => errors.push(String(error)));
      await page.goto(setup.console.url, { waitUntil: 'load' });
      await page.waitForSelector('body[data-seq]');
      return { page, dialogs, errors, answer };
    }

    it('shows the counts the database holds, the dead tasks and the locks and leaders', async () => {
      const { page, errors } = await openPage();
      const expected = await databaseCounts(setup.admin, setup.schema);
      const total = [...expected.values()].reduce((a, b) => a + b, 0);
      const byStatus = (status: string) =>
        [...expected].filter(([k]) => k.endsWith(`/${status}`)).reduce((sum, [, n]) => sum + n, 0);
      expect(byStatus('done')).toBe(24);
      expect(byStatus('dead')).toBe(4);
      await page.waitForFunction(
        (done, dead, all) =>
          document.getElementById('count-done')?.textContent === String(done) &&
          document.getElementById('count-dead')?.textContent === String(dead) &&
          document.getElementById('count-total')?.textContent === String(all),
        {},
        byStatus('done'),
        byStatus('dead'),
        total,
      );
      const cells = await page.$$eval('#counts tbody td[data-status]', (tds) =>
        tds.map((td) => [
          `${(td.parentElement as HTMLElement).dataset.kind}/${(td as HTMLElement).dataset.status}`,
          Number(td.textContent),
        ]),
      );
      for (const [key, n] of cells as Array<[string, number]>) {
        if (key.endsWith('/total')) continue;
        expect([key, n]).toEqual([key, expected.get(key) ?? 0]);
      }
      const dead = await page.$$eval('#problem-table tbody tr', (rows) =>
        rows.map((row) => (row as HTMLElement).dataset.id),
      );
      expect(dead.sort()).toEqual([...ids.flaky, ...ids.evil].sort());
      await page.waitForFunction(() =>
        [...document.querySelectorAll('#leader-table td')].some((td) => td.textContent === 'reporter-1'),
      );
      const lockKeys = await page.$$eval('#lock-table tbody tr', (rows) =>
        rows.map((row) => (row as HTMLElement).dataset.key),
      );
      expect(lockKeys).toContain('reports/nightly');
      const permits = '#semaphore-table tr[data-name="limit/partner-api"] td[data-field="permits"]';
      await page.waitForFunction(
        (cell) => document.querySelector(cell)?.textContent === '1 of 2 held, 1 free',
        {},
        permits,
      );
      const holders = await page.$eval(
        '#semaphore-table tr[data-name="limit/partner-api"] td[data-field="holders"]',
        (td) => ({ text: td.textContent ?? '', elements: td.querySelectorAll('*').length }),
      );
      expect(holders.text).toContain(`(${EVIL_HTML})`);
      expect(holders.elements).toBe(0);
      expect(await page.$$eval('#throughput-chart canvas', (c) => c.length)).toBe(1);
      // The table's size as the catalog says it; retention (done after 0 ms) would remove every done task.
      const size = await setup.admin.query(
        `SELECT pg_total_relation_size('"${setup.schema}".tasks'::regclass)::int AS bytes`,
      );
      const kB = `${(size.rows[0].bytes / 1024).toFixed(1)} kB`;
      await page.waitForFunction(
        (text, done) =>
          document.getElementById('table-size')?.textContent === text &&
          document.querySelector('#retention li[data-status="done"] [data-field="due"]')?.textContent ===
            String(done),
        {},
        kB,
        byStatus('done'),
      );
      expect(await page.$eval('#retention li[data-status="dead"]', (li) => li.textContent)).toBe(
        'dead tasks: kept (no age set)',
      );
      expect(errors).toEqual([]);
      await page.screenshot({ path: join(shots, 'overview.png'), fullPage: true });
      await page.close();
    });

    it('renders a payload and error holding <img onerror> and <script> as text: no element, no script run', async () => {
      const { page, dialogs, errors } = await openPage();
      const evil = ids.evil[0]!;
      await page.waitForSelector(`#problem-table tr[data-id="${evil}"]`);
      const errorCell = await page.$eval(
        `#problem-table tr[data-id="${evil}"] td.error`,
        (td) => td.textContent ?? '',
      );
      expect(errorCell).toBe(`${EVIL_HTML} ${EVIL_SCRIPT}`);
      await page.click(`#problem-table button.task-link[data-id="${evil}"]`);
      await page.waitForFunction((id) => document.getElementById('detail-id')?.textContent === id, {}, evil);
      const payload = await page.$eval('#detail-payload', (pre) => pre.textContent ?? '');
      expect(JSON.parse(payload)).toEqual({ html: EVIL_HTML, script: EVIL_SCRIPT });
      expect(await page.$eval('#detail-error', (pre) => pre.textContent)).toBe(`${EVIL_HTML} ${EVIL_SCRIPT}`);
      const injected = await page.evaluate(() => ({
        pwned: (window as unknown as { __pwned?: number }).__pwned ?? null,
        images: document.querySelectorAll('img').length,
        scripts: [...document.querySelectorAll('script')].map((s) => s.getAttribute('src')),
      }));
      expect(injected).toEqual({
        pwned: null,
        images: 0,
        scripts: ['/vendor/uPlot.iife.min.js', '/console.js'],
      });
      expect(dialogs).toEqual([]);
      expect(errors).toEqual([]);
      const detail = await page.$('#detail');
      await detail!.screenshot({ path: join(shots, 'task-detail.png') });
      await page.close();
    });

    it('lists the workers the database holds: alive ones (an idle one too), a stopped one, ids as text', async () => {
      const { source, locks, admin, schema } = setup;
      const evilId = `idle ${EVIL_HTML}`;
      const extra = ['stopped-early', evilId].map((id) => {
        const w = new Worker({ id, locks, source, handler, schedule: { every: 60_000 }, kinds: ['none'] });
        return { worker: w, run: w.run() };
      });
      try {
        const table = `"${schema}".workers`;
        const count = async () => (await admin.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n;
        await until(async () => (await count()) >= 3);
        await extra[0]!.worker.stop();
        await extra[0]!.run;
        const { rows } = await admin.query<{ worker_id: string; state: string; host: string; pid: number }>(
          `SELECT worker_id, state, host, pid FROM ${table} ORDER BY worker_id`,
        );
        expect(rows.map((r) => [r.worker_id, r.state]).sort()).toEqual(
          [
            [worker.id, 'running'],
            ['stopped-early', 'stopped'],
            [evilId, 'running'],
          ].sort(),
        );
        const { page, errors } = await openPage();
        await page.waitForFunction(
          () =>
            document
              .querySelector('#worker-table tr[data-worker="stopped-early"]')
              ?.getAttribute('data-state') === 'stopped',
        );
        const shown = await page.$$eval('#worker-table tbody tr', (trs) =>
          trs.map((tr) => ({
            id: (tr.firstElementChild as HTMLElement).firstChild?.textContent,
            state: (tr as HTMLElement).dataset.state,
            label: tr.querySelector('[data-field="state"]')?.textContent,
            where: tr.querySelector('[data-field="where"]')?.textContent,
            running: tr.querySelector('[data-field="running"]')?.textContent,
            since: tr.querySelector('[data-field="since"]')?.textContent,
          })),
        );
        const expected = new Map([
          [worker.id, 'alive'],
          [evilId, 'alive'],
          ['stopped-early', 'stopped'],
        ]);
        expect(shown.map((w) => w.id).sort()).toEqual([...expected.keys()].sort());
        for (const w of shown) {
          const row = rows.find((r) => r.worker_id === w.id)!;
          expect(w.state).toBe(expected.get(w.id!));
          expect(w.label).toBe(w.state === 'alive' ? 'alive' : 'stopped');
          expect(w.where).toBe(`${row.host} (pid ${row.pid})`);
          expect(w.since).not.toBe('');
        }
        // The idle worker runs nothing and is listed all the same.
        expect(shown.find((w) => w.id === evilId)?.running).toBe('0');
        const injected = await page.evaluate(() => ({
          pwned: (window as unknown as { __pwned?: number }).__pwned ?? null,
          images: document.querySelectorAll('img').length,
        }));
        expect(injected).toEqual({ pwned: null, images: 0 });
        expect(errors).toEqual([]);
        const section = await page.$('#workers');
        await section!.screenshot({ path: join(shots, 'workers.png') });
        await page.close();
      } finally {
        for (const { worker: w, run } of extra) {
          await w.stop();
          await run;
        }
        await admin.query(`DELETE FROM "${schema}".workers WHERE worker_id IN ('stopped-early', $1)`, [
          evilId,
        ]);
      }
    });

    it('retries a dead task with the token from the page; the worker then runs it exactly once', async () => {
      const { page, errors } = await openPage();
      const target = ids.flaky[0]!;
      expect(runs.get(target)).toBe(1);
      fixed = true;
      // Without the token the page refuses before asking the server.
      await page.waitForSelector(`#problem-table button.retry[data-id="${target}"]`);
      await page.click(`#problem-table button.retry[data-id="${target}"]`);
      await page.waitForFunction(() =>
        document.getElementById('action-status')?.textContent?.includes('token'),
      );
      expect((await setup.source.get(target))?.status).toBe('dead');

      await page.type('#token', TOKEN);
      await page.click('#token-form button[type="submit"]');
      await page.waitForFunction(() => document.getElementById('mode')?.textContent === 'actions enabled');
      await page.screenshot({ path: join(shots, 'dead-tasks.png') });
      await page.click(`#problem-table button.retry[data-id="${target}"]`);
      await page.waitForFunction(
        (id) => document.getElementById('action-status')?.textContent === `task ${id} retried: it is due now`,
        {},
        target,
      );
      await until(async () => (await setup.source.get(target))?.status === 'done');
      // The page drops it from the dead tasks on a later snapshot and counts it as done.
      await page.waitForFunction(
        (id) => !document.querySelector(`#problem-table tr[data-id="${id}"]`),
        {},
        target,
      );
      await page.waitForFunction(() => document.getElementById('count-done')?.textContent === '25');
      expect(runs.get(target)).toBe(2);
      expect(await setup.source.get(target)).toMatchObject({ status: 'done', attempts: 1 });
      expect(setup.actions).toEqual([expect.objectContaining({ taskId: target, outcome: 'retried' })]);
      // The other dead tasks were not touched.
      for (const other of [...ids.flaky.slice(1), ...ids.evil]) {
        expect(runs.get(other)).toBe(1);
        expect((await setup.source.get(other))?.status).toBe('dead');
      }
      expect(errors).toEqual([]);
      await page.close();
    });

    it('shows each lock age, lease left and waiting line as the backend reports them', async () => {
      const { page, errors } = await openPage();
      const key = 'reports/weekly';
      const holder = (await setup.locks.getHolder(key))!;
      const [queued] = await setup.locks.waiters(key);
      expect(queued?.sessionId).toBe(waiter.id);
      const row = `#lock-table tr[data-key="${key}"]`;
      await page.waitForFunction(
        (sel, id) => document.querySelector(`${sel} td[data-field="waiters"]`)?.textContent === `1. ${id}`,
        {},
        row,
        waiter.id,
      );
      const cells = await page.$eval(row, (tr) =>
        Object.fromEntries(
          [...tr.querySelectorAll('td[data-field]')].map((td) => [
            (td as HTMLElement).dataset.field,
            { text: td.textContent, acquiredAt: (td as HTMLElement).dataset.acquiredAt ?? null },
          ]),
        ),
      );
      // The acquisition time is the backend's record, on the clock it names; the age counts from it.
      expect(cells.age?.acquiredAt).toBe(String(holder.acquiredAt));
      expect(cells.age?.text).toMatch(/^\d+(\.\d)? (ms|s|min) \(server clock\)$/);
      expect(seconds(cells.age!.text!)).toBeLessThanOrEqual((Date.now() - holder.acquiredAt!) / 1000 + 0.1);
      // The lease left is the backend's figure: renewed, so never above the session's TTL nor at 0.
      const lease = seconds(cells.lease!.text!);
      expect(lease).toBeGreaterThan(0);
      expect(lease).toBeLessThanOrEqual(waiter.ttlMs / 1000);
      expect(cells.fence?.text).toBe(String(holder.fence));
      const note = await page.$eval('#locks-note', (p) => p.textContent);
      expect(note).toContain('Lease left');
      expect(note).not.toContain('keeps no waiting line');
      expect(errors).toEqual([]);
      await page.close();
    });

    it('force-releases a lock only after a confirmation that says what it risks', async () => {
      const { page, dialogs, errors, answer } = await openPage();
      const key = 'reports/nightly';
      const before = (await setup.locks.getHolder(key))!;
      expect(before).not.toBeNull();
      await page.type('#token', TOKEN);
      await page.click('#token-form button[type="submit"]');
      const button = `#lock-table button.release[data-key="${key}"]`;
      await page.waitForSelector(button);
      // Dismissed: nothing is sent, the holder stays.
      await page.click(button);
      await page.waitForFunction(
        (k) => document.getElementById('action-status')?.textContent === `lock ${k}: not released`,
        {},
        key,
      );
      expect(dialogs).toHaveLength(1);
      expect(dialogs[0]).toContain(`Force-release lock "${key}", held by session ${before.sessionId}`);
      expect(dialogs[0]).toContain('keeps believing it holds the lock');
      expect(dialogs[0]).toContain('only systems that check fences reject the old holder');
      expect(await setup.locks.getHolder(key)).toMatchObject({ sessionId: before.sessionId });
      expect(setup.actions.some((a) => a.action === 'force-release')).toBe(false);
      // Accepted: released through the API, logged, and the key is free with a higher fence next.
      answer.accept = true;
      await page.click(button);
      await page.waitForFunction(
        (k) => document.getElementById('action-status')?.textContent?.startsWith(`lock ${k} released`),
        {},
        key,
      );
      expect(dialogs).toHaveLength(2);
      expect(await setup.locks.getHolder(key)).toBeNull();
      expect(setup.actions.at(-1)).toMatchObject({ action: 'force-release', key, outcome: 'released' });
      await page.waitForFunction((k) => !document.querySelector(`#lock-table tr[data-key="${k}"]`), {}, key);
      const next = await setup.locks.openSession();
      const lease = await next.tryAcquire(key);
      expect(lease!.fence).toBeGreaterThan(before.fence);
      expect(errors).toEqual([]);
      await page.close();
    });

    it('shows a failing refresh in the badge, without the password, and goes back to live', async () => {
      const proxy = await startFaultProxy(db.connectionString);
      const through = new URL(db.connectionString);
      through.host = proxy.address;
      if (!through.password) through.password = 'pw-not-for-the-page-0123';
      const viaProxy = new pg.Pool({ connectionString: through.toString(), max: 2 });
      viaProxy.on('error', () => {});
      const other = await consoleSetup(db, { db: viaProxy, refreshMs: 250 });
      const page = await browser.newPage();
      try {
        await page.goto(other.console.url, { waitUntil: 'load' });
        await page.waitForFunction(() => document.getElementById('live')?.textContent === 'live');
        proxy.setMode('reset');
        await page.waitForFunction(
          () =>
            document.getElementById('live')?.textContent === 'refresh failing' &&
            document
              .getElementById('refresh-error')
              ?.textContent?.startsWith('reading the database failed: '),
        );
        const shown = await page.evaluate(() => document.body.textContent ?? '');
        expect(shown).not.toContain(`:${through.password}@`);
        // A short real password ('baton') is an ordinary word on this page: it is masked by position only.
        if (through.password.length >= 8) expect(shown).not.toContain(through.password);
        proxy.setMode('pass');
        await page.waitForFunction(
          () =>
            document.getElementById('live')?.textContent === 'live' &&
            document.getElementById('refresh-error')?.textContent === '',
        );
      } finally {
        await page.close();
        await other.close();
        await viaProxy.end().catch(() => {});
        await proxy.close();
      }
    });
  });
}

async function openTasks(setup: Awaited<ReturnType<typeof consoleSetup>>): Promise<number> {
  const { rows } = await setup.admin.query(
    `SELECT count(*)::int AS n FROM "${setup.schema}".tasks WHERE finished_at IS NULL`,
  );
  return rows[0].n;
}

/** Polls `condition` every 25 ms until it holds (the test's own timeout bounds the wait). */
/** A duration as the page writes it (`850 ms`, `12.5 s`, `3 min`), in seconds. */
function seconds(text: string): number {
  const match = /^(\d+(?:\.\d+)?) (ms|s|min)/.exec(text);
  if (!match) throw new Error(`not a duration: ${text}`);
  return Number(match[1]) * { ms: 0.001, s: 1, min: 60 }[match[2] as 'ms' | 's' | 'min'];
}

async function until(condition: () => Promise<boolean>): Promise<void> {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 25));
}
