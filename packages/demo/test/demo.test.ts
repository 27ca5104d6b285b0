import { redisAvailable } from '@baton/test-servers/redis';
import { describe, expect, it } from 'vitest';
import { baton } from './run-baton.js';

interface DemoSummary {
  ok: boolean;
  backend: string;
  separateProcesses: boolean;
  tasks: number;
  workers: Array<{ name: string; completed?: number; claimed?: number; lockAttempts?: number }>;
  lockAttemptsPerTask: number | null;
  staleWritesRejected: number;
  checks: Array<{ name: string; ok: boolean; detail: string }>;
}

function summary(stdout: string): DemoSummary {
  return JSON.parse(stdout) as DemoSummary;
}

/** What to show when a demo run fails: its stderr, and the checks its JSON summary marks failed. */
function why(result: { stdout: string; stderr: string }): string {
  let failed = '';
  try {
    failed = summary(result.stdout)
      .checks.filter((c) => !c.ok)
      .map((c) => `${c.name}: ${c.detail}`)
      .join('\n');
  } catch {
    failed = result.stdout;
  }
  return `stderr:\n${result.stderr}\nfailed checks:\n${failed}`;
}

// Sequential: each demo boots its own PGlite, which is CPU-heavy.
describe('baton demo', { timeout: 240_000 }, () => {
  it('memory (the npm start default): progress, then a summary proven by the database', async () => {
    const result = await baton(['demo', '--tasks', '150', '--workers', '3'], { timeoutMs: 230_000 });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('baton demo: 150 tasks, 3 workers × 8 handlers, memory locks');
    expect(result.stdout).toMatch(
      /\[\d+\.\ds\] \d+\/150 done · \d+ tasks\/s · [\d.]+ lock attempts\/task · worker-1=\d+/,
    );
    expect(result.stdout).toContain('✓ every task is done: 150/150 done');
    expect(result.stdout).toContain('✓ every task executed exactly once: 150 execution rows for 150 tasks');
    expect(result.stdout).toContain('✓ no stale write applied');
    expect(result.stdout).toContain('PASS: each task ran exactly once.');
  });

  it('consul: each worker a separate `baton worker` process on the embedded Consul test server', async () => {
    const result = await baton(['--json', 'demo', '--backend', 'consul', '--tasks', '40', '--workers', '2'], {
      timeoutMs: 230_000,
    });
    expect(result.code, why(result)).toBe(0);
    const s = summary(result.stdout);
    expect(s).toMatchObject({ ok: true, backend: 'consul', separateProcesses: true, tasks: 40 });
    expect(s.checks.every((c) => c.ok)).toBe(true);
    expect(s.workers.reduce((sum, w) => sum + (w.completed ?? 0), 0)).toBe(40);
    expect(s.lockAttemptsPerTask).toBeGreaterThanOrEqual(1);
  });

  it('dynamodb: separate worker processes on dynalite', async () => {
    const result = await baton(
      ['--json', 'demo', '--backend', 'dynamodb', '--tasks', '20', '--workers', '2'],
      {
        timeoutMs: 230_000,
      },
    );
    expect(result.code, why(result)).toBe(0);
    const s = summary(result.stdout);
    expect(s).toMatchObject({ ok: true, backend: 'dynamodb', separateProcesses: true, tasks: 20 });
    expect(s.workers.reduce((sum, w) => sum + (w.claimed ?? 0), 0)).toBe(20);
  });

  it('postgres: separate worker processes, locks in a schema of the demo database', async () => {
    const result = await baton(
      ['--json', 'demo', '--backend', 'postgres', '--tasks', '20', '--workers', '2'],
      { timeoutMs: 230_000 },
    );
    expect(result.code, why(result)).toBe(0);
    const s = summary(result.stdout);
    expect(s).toMatchObject({ ok: true, backend: 'postgres', separateProcesses: true, tasks: 20 });
    expect(s.workers.reduce((sum, w) => sum + (w.completed ?? 0), 0)).toBe(20);
  });

  it.skipIf(!redisAvailable('baton demo --backend redis'))(
    'redis: separate worker processes on a real redis-server',
    async () => {
      const result = await baton(
        ['--json', 'demo', '--backend', 'redis', '--tasks', '20', '--workers', '2'],
        {
          timeoutMs: 230_000,
        },
      );
      expect(result.code, why(result)).toBe(0);
      const s = summary(result.stdout);
      expect(s).toMatchObject({ ok: true, backend: 'redis', separateProcesses: true, tasks: 20 });
      expect(s.checks.every((c) => c.ok)).toBe(true);
    },
  );

  it('exits 1 and says which check failed when the run cannot finish', async () => {
    const result = await baton(
      [
        '--json',
        'demo',
        '--tasks',
        '50',
        '--workers',
        '1',
        '--concurrency',
        '1',
        '--sleep',
        '2000',
        '--timeout',
        '1s',
      ],
      { timeoutMs: 230_000 },
    );
    expect(result.code).toBe(1);
    const s = summary(result.stdout);
    expect(s.ok).toBe(false);
    expect(s.checks.find((c) => c.name === 'workers ran to the end')).toMatchObject({ ok: false });
    expect(s.checks.find((c) => c.name === 'every task is done')?.ok).toBe(false);
  });
});
