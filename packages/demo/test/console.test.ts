import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const BIN = fileURLToPath(import.meta.resolve('@baton/cli/bin'));
const FOREIGN = /^(BATON_|CONSUL_|AWS_|PG[A-Z]+$|DATABASE_URL$)/;

interface Snapshot {
  counts: { open: Array<{ status: string; n: number }>; finished: Array<{ status: string; n: number }> };
  locks: { backend: string } | null;
  workers: Array<{ id: string; state: string; counters: { completed: number } | null }>;
}

describe('baton demo --console', { timeout: 240_000 }, () => {
  it('serves the console next to the workers, prints its URL and stays open after the checks until SIGINT', async () => {
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (value !== undefined && !FOREIGN.test(key)) env[key] = value;
    }
    const child = spawn(
      process.execPath,
      [BIN, 'demo', '--console', '0', '--tasks', '60', '--workers', '2', '--sleep', '10'],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    const waiters = new Set<() => void>();
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      for (const wake of waiters) wake();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    const waitFor = (pattern: RegExp) =>
      new Promise<RegExpMatchArray>((resolve, reject) => {
        const check = () => {
          const match = stdout.match(pattern);
          if (match) {
            waiters.delete(check);
            resolve(match);
          }
        };
        waiters.add(check);
        exited.then(() => reject(new Error(`demo exited before ${pattern}:\n${stdout}\n${stderr}`)));
        check();
      });
    try {
      const [, url] = await waitFor(/console: (http:\/\/127\.0\.0\.1:\d+\/)/);
      const total = (s: Snapshot) =>
        [...s.counts.open, ...s.counts.finished].reduce((sum, r) => sum + r.n, 0);
      const first = (await (await fetch(new URL('/api/snapshot', url!))).json()) as Snapshot;
      expect(total(first)).toBe(60);
      expect(first.locks?.backend).toBe('memory');
      await waitFor(/The console stays open at/);
      expect(stdout).toContain('PASS: each task ran exactly once.');
      // Done counts are recounted every second in the demo: the console shows all 60 done within that.
      let last: Snapshot;
      do {
        await new Promise((resolve) => setTimeout(resolve, 100));
        last = (await (await fetch(new URL('/api/snapshot', url!))).json()) as Snapshot;
      } while (last.counts.finished[0]?.n !== 60);
      expect(last.counts.finished).toEqual([{ status: 'done', kind: 'demo', n: 60 }]);
      expect(last.counts.open).toEqual([]);
      // Every demo worker published its heartbeat, and marked itself stopped when the run ended.
      const workers = [...last.workers].sort((a, b) => (a.id < b.id ? -1 : 1));
      expect(workers.map((w) => [w.id, w.state])).toEqual([
        ['worker-1', 'stopped'],
        ['worker-2', 'stopped'],
      ]);
      expect(workers.reduce((sum, w) => sum + (w.counters?.completed ?? 0), 0)).toBe(60);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(130);
  });
});
