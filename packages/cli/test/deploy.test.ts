import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { MemoryLockProvider, MemoryLockStore, MemoryTaskSource, Worker } from '@baton/core';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { WorkerMetrics } from '../src/metrics.js';

const run = promisify(execFile);
const DEPLOY = fileURLToPath(new URL('../../../deploy/', import.meta.url));
const ALERTS = join(DEPLOY, 'prometheus/baton-alerts.yml');
const ALERT_TESTS = join(DEPLOY, 'prometheus/baton-alerts.test.yml');
const DASHBOARD = join(DEPLOY, 'grafana/baton-workers.json');

/** Where `promtool` (Debian's `prometheus` package) is, or undefined; under CI a missing one is an error. */
async function findPromtool(): Promise<string | undefined> {
  try {
    await run('promtool', ['--version']);
    return 'promtool';
  } catch {
    const message = 'promtool not found: install Debian\'s "prometheus" package to check the alert rules.';
    if (process.env.CI) throw new Error(`${message} CI is set, so the tests fail instead of skipping.`);
    console.warn(`deploy.test.ts: ${message} Skipping the promtool checks.`);
    return undefined;
  }
}
const promtool = await findPromtool();

interface AlertFile {
  groups: Array<{ rules: Array<{ alert: string; expr: string }> }>;
}
interface Dashboard {
  panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
}

async function alertRules() {
  return (YAML.parse(await readFile(ALERTS, 'utf8')) as AlertFile).groups.flatMap((g) => g.rules);
}
async function dashboardExprs() {
  const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as Dashboard;
  return dashboard.panels.flatMap((p) => p.targets.map((t) => ({ panel: p.title, expr: t.expr })));
}

/** Every sample name `baton worker --metrics-port` can expose (histograms with their three series). */
async function exportedNames(): Promise<Set<string>> {
  const text = await new WorkerMetrics({ defaultMetrics: false }).metrics();
  const names = new Set<string>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name! + suffix);
    else names.add(name!);
  }
  return names;
}

const usedNames = (expr: string) => [...new Set(expr.match(/\bbaton_[a-z_]+/g) ?? [])];

describe('deploy/: the alert rules and the Grafana dashboard', () => {
  it('use only metrics the worker exports', async () => {
    const names = await exportedNames();
    const exprs = [
      ...(await alertRules()).map((r) => ({ where: `alert ${r.alert}`, expr: r.expr })),
      ...(await dashboardExprs()).map((d) => ({ where: `panel "${d.panel}"`, expr: d.expr })),
    ];
    expect(exprs.length).toBeGreaterThan(10);
    for (const { where, expr } of exprs) {
      const used = usedNames(expr);
      expect(used.length, where).toBeGreaterThan(0);
      for (const name of used)
        expect(names.has(name), `${where} uses ${name}, which no worker exports`).toBe(true);
    }
  });

  it.skipIf(!promtool)(
    'alert rules pass promtool check rules and their unit tests (promtool test rules)',
    async () => {
      const checked = await run(promtool!, ['check', 'rules', ALERTS]);
      expect(checked.stdout).toMatch(/SUCCESS: 7 rules found/);
      const tested = await run(promtool!, ['test', 'rules', ALERT_TESTS]);
      expect(tested.stdout).toContain('SUCCESS');
    },
  );

  it.skipIf(!promtool)("every dashboard query is valid PromQL (checked by promtool's parser)", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'baton-dash-'));
    try {
      const exprs = await dashboardExprs();
      const rules = {
        groups: [
          {
            name: 'dashboard',
            rules: exprs.map((d, n) => ({
              record: `dashboard:query_${n}`,
              expr: d.expr.replaceAll('$__rate_interval', '5m'),
            })),
          },
        ],
      };
      const file = join(dir, 'dashboard-queries.yml');
      await writeFile(file, YAML.stringify(rules));
      const checked = await run(promtool!, ['check', 'rules', file]);
      expect(checked.stdout).toContain(`SUCCESS: ${exprs.length} rules found`);
      // The check would refuse a query that does not parse.
      await writeFile(
        file,
        YAML.stringify({ groups: [{ name: 'x', rules: [{ record: 'x:y', expr: 'sum(' }] }] }),
      );
      await expect(run(promtool!, ['check', 'rules', file])).rejects.toThrow();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the gauges the alerts read', () => {
  it('baton_leader{key} reads 0 before and after leading and 1 while leading; baton_due_tasks_seen follows passes', async () => {
    const store = new MemoryLockStore();
    const source = new MemoryTaskSource();
    await source.enqueue([{ kind: 'k' }, { kind: 'k' }, { kind: 'k' }]);
    let releaseLeader!: () => void;
    const leading = new Promise<void>((resolve) => {
      releaseLeader = resolve;
    });
    const worker = new Worker({
      id: 'w',
      locks: new MemoryLockProvider({ store }),
      source,
      schedule: { every: 60_000 },
      handler: () => 'ok',
      leader: {
        key: 'leader/scheduler',
        run: ({ signal }) =>
          new Promise<void>((resolve) => {
            releaseLeader();
            signal.addEventListener('abort', () => resolve(), { once: true });
          }),
      },
    });
    const metrics = new WorkerMetrics({ defaultMetrics: false });
    metrics.observe(worker, { leaderKey: 'leader/scheduler' });
    const sample = async (name: string) => {
      const line = (await metrics.metrics()).split('\n').find((l) => l.startsWith(`${name} `));
      return line === undefined ? undefined : Number(line.slice(name.length + 1));
    };
    expect(await sample('baton_leader{key="leader/scheduler"}')).toBe(0);
    const firstPass = new Promise<void>((resolve) => worker.on('pass-finished', () => resolve()));
    const running = worker.run();
    await Promise.all([leading, firstPass]);
    expect(await sample('baton_leader{key="leader/scheduler"}')).toBe(1);
    expect(await sample('baton_due_tasks_seen')).toBe(3);
    await worker.stop();
    await running;
    expect(await sample('baton_leader{key="leader/scheduler"}')).toBe(0);
    expect(await sample('baton_workers')).toBe(1);
  });
});
