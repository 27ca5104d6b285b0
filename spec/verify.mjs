#!/usr/bin/env node
// node spec/verify.mjs [--only SUBSTRING] [--jobs N] [--trails] [--json FILE] [--extended]
//
// Model-checks spec/baton.pml, spec/buckets.pml and spec/semaphore.pml with SPIN: the faithful model at bounded sizes (every property must hold), every
// planted bug (its property must fail), what survives a broken lock, and the documented finding. Prints a
// table of outcomes, states and times; exits 1 when any check did not come out as expected.
// `npm run verify` runs this file's checks through vitest (spec/verify.test.ts).

import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { allChecks } from './checks.mjs';
import { assertTools, runCheck } from './spin.mjs';

/**
 * Runs checks, at most `jobs` at once, in order of the list; `onResult` sees each result as it arrives.
 * @param {import('./spin.mjs').Check[]} checks
 * @param {{ jobs?: number, onResult?: (result: import('./spin.mjs').CheckResult) => void }} [options]
 */
export async function runChecks(checks, { jobs = 2, onResult } = {}) {
  await assertTools();
  const results = new Array(checks.length);
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < checks.length; i = next++) {
      results[i] = await runCheck(checks[i]);
      onResult?.(results[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, jobs) }, lane));
  return results;
}

/** Markdown table of results. */
export function formatTable(results) {
  const rows = [
    '| check | kind | expected | outcome | states | transitions | depth | memory | time |',
    '|---|---|---|---|--:|--:|--:|--:|--:|',
  ];
  for (const r of results) {
    const expected = 'pass' in r.check.expect ? 'holds' : `fails ${r.check.expect.fails}`;
    const outcome = `${r.violated ? `fails ${r.violated}` : 'holds'}${r.ok ? '' : ' **UNEXPECTED**'}`;
    rows.push(
      `| ${r.check.id} | ${r.check.kind} | ${expected} | ${outcome} | ${r.states.toLocaleString('en')} | ` +
        `${r.transitions.toLocaleString('en')} | ${r.depth} | ${Math.round(r.memoryMb)} MB | ${r.seconds.toFixed(1)} s |`,
    );
  }
  return rows.join('\n');
}

async function main() {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' },
      jobs: { type: 'string', default: '2' },
      trails: { type: 'boolean', default: false },
      json: { type: 'string' },
      extended: { type: 'boolean', default: false },
    },
  });
  const checks = allChecks(values.extended || undefined).filter(
    (c) => !values.only || c.id.includes(values.only),
  );
  if (checks.length === 0) throw new Error(`no check matches --only ${values.only}`);
  const started = performance.now();
  const results = await runChecks(checks, {
    jobs: Number(values.jobs),
    onResult: (r) => {
      const what = r.violated ? `fails ${r.violated}` : 'holds';
      process.stdout.write(
        `${r.ok ? 'ok  ' : 'FAIL'} ${r.check.id}: ${what}, ${r.states.toLocaleString('en')} states, ${r.seconds.toFixed(1)} s\n`,
      );
      if (values.trails || !r.ok) {
        for (const line of r.trail) process.stdout.write(`       ${line}\n`);
      }
    },
  });
  const minutes = ((performance.now() - started) / 60_000).toFixed(1);
  process.stdout.write(`\n${formatTable(results)}\n\n${results.length} checks in ${minutes} min\n`);
  if (values.json) {
    const plain = results.map(({ report: _report, ...rest }) => rest);
    writeFileSync(values.json, `${JSON.stringify(plain, null, 2)}\n`);
  }
  const unexpected = results.filter((r) => !r.ok);
  if (unexpected.length > 0) {
    process.stdout.write(`${unexpected.length} checks did not come out as expected\n`);
    process.exitCode = 1;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
  });
}
