import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error: plain JavaScript module without type declarations
import { benchmarks } from '../benchmarks/index.mjs';
// @ts-expect-error: plain JavaScript module without type declarations
import { validateResult } from '../lib/results.mjs';

// Every benchmark runs in --quick mode against the built packages (dist/, as `npm test` builds first) and
// must write a well-formed result file. This checks that the benchmarks work, never how fast anything is.

const benchDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = mkdtempSync(join(tmpdir(), 'baton-bench-smoke-'));
const names: string[] = (benchmarks as Array<{ name: string }>).map((b) => b.name);

afterAll(() => rmSync(out, { recursive: true, force: true }));

function runQuick(): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [join(benchDir, 'run.mjs'), '--quick', '--allow-skip', '--out', out],
      {
        cwd: join(benchDir, '..'),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('benchmarks (--quick)', () => {
  let run: { code: number | null; output: string };

  it('run to the end and exit cleanly', { timeout: 300_000 }, async () => {
    run = await runQuick();
    expect(run.code, run.output.slice(-6_000)).toBe(0);
  });

  it.each(names)('%s writes a well-formed result', (name) => {
    expect(run, 'the run did not happen').toBeDefined();
    const result = JSON.parse(readFileSync(join(out, `${name}.json`), 'utf8'));
    expect(validateResult(result, name)).toEqual([]);
    // Only a missing PostgreSQL server may skip a benchmark (the runner says so); nothing may fail.
    if (result.status !== 'ok') {
      expect(result.status, result.reason).toBe('skipped');
      expect(result.reason).toMatch(/PostgreSQL/);
    }
    expect(result.quick).toBe(true);
  });
});
