#!/usr/bin/env node
// Runs the benchmarks. `npm run bench` builds the packages first, then runs this.
//
//   node bench/run.mjs                      every benchmark, full size, results in bench/results/
//   node bench/run.mjs lock-roundtrip       one (or several) by name
//   node bench/run.mjs --quick              small sizes, one round (the smoke test uses this); results go to
//                                           a temp dir unless --out is given, never over bench/results/
//   node bench/run.mjs --out /tmp/x         write results elsewhere
//   node bench/run.mjs --skip-docs          do not refresh docs/benchmarks.md after a full run
//   node bench/run.mjs --list               names and titles
//   node bench/run.mjs --backends memory,consul   only these lock backends where a benchmark has several
//
// Each benchmark writes <out>/<name>.json (see lib/results.mjs) and prints its markdown table. A full run
// into bench/results/ also refreshes the tables in docs/benchmarks.md (bench/report.mjs); a run of every
// benchmark writes bench/results/_run.json with the total time.
// Exit code 1 when a benchmark failed; a benchmark that cannot run here (no PostgreSQL, a package not built)
// is written as `skipped` with the reason and makes the exit code 2 unless --allow-skip is given.

import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchmarks } from './benchmarks/index.mjs';
import { load1, machineInfo } from './lib/machine.mjs';
import { benchDir, UnavailableError } from './lib/packages.mjs';
import { ensurePostgres } from './lib/postgres.mjs';
import { RESULT_FORMAT, writeResult } from './lib/results.mjs';
import { updateDocs } from './report.mjs';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    list: { type: 'boolean', default: false },
    'allow-skip': { type: 'boolean', default: false },
    'skip-docs': { type: 'boolean', default: false },
    backends: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  process.stdout.write(
    'usage: node bench/run.mjs [name ...] [--quick] [--out DIR] [--backends a,b] [--list] [--allow-skip]\n' +
      `benchmarks: ${benchmarks.map((b) => b.name).join(', ')}\n`,
  );
  process.exit(0);
}
if (values.list) {
  for (const b of benchmarks) process.stdout.write(`${b.name.padEnd(16)} ${b.title}\n`);
  process.exit(0);
}

const unknown = positionals.filter((name) => !benchmarks.some((b) => b.name === name));
if (unknown.length) {
  process.stderr.write(`unknown benchmark(s): ${unknown.join(', ')}; try --list\n`);
  process.exit(64);
}
const selected = positionals.length ? benchmarks.filter((b) => positionals.includes(b.name)) : benchmarks;
const quick = values.quick;
const defaultOut = join(benchDir, 'results');
const outDir = values.out ?? (quick ? join(tmpdir(), 'baton-bench-quick') : defaultOut);
const onlyBackends = values.backends
  ?.split(',')
  .map((b) => b.trim())
  .filter(Boolean);

// The AWS SDKs print end-of-support notices for Node 20 / SDK v2 on first use; they say nothing about the
// measurement and would bury the tables.
process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE = '1';
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = (warning, ...rest) => {
  const type = typeof rest[0] === 'string' ? rest[0] : rest[0]?.type;
  if (type === 'NodeVersionSupportWarning' || /AWS SDK for JavaScript/.test(String(warning))) return;
  emitWarning(warning, ...rest);
};

// Stray rejections from client libraries during shutdown must not kill the whole run; they are reported.
const stray = [];
process.on('unhandledRejection', (reason) => {
  stray.push(reason);
  process.stderr.write(`[bench] unhandled rejection: ${reason?.stack ?? reason}\n`);
});

const machine = machineInfo();
const log = (msg) => process.stderr.write(`[bench] ${msg}\n`);
log(
  `${machine.cpuModel}, ${machine.cores} cores, ${(machine.memoryBytes / 2 ** 30).toFixed(1)} GiB, node ${machine.node}` +
    `${quick ? ', QUICK mode' : ''}; results → ${outDir}`,
);

const runStarted = performance.now();
const outcomes = [];
for (const bench of selected) {
  const startedAt = new Date();
  const t0 = performance.now();
  const loadBefore = load1();
  const ctx = {
    quick,
    backends: (all) => (onlyBackends ? all.filter((b) => onlyBackends.includes(b)) : all),
    log: (msg) => log(`${bench.name}: ${msg}`),
    postgres: () => ensurePostgres((msg) => log(`postgres: ${msg}`)),
  };
  const base = {
    format: RESULT_FORMAT,
    benchmark: bench.name,
    title: bench.title,
    description: bench.description,
    quick,
    startedAt: startedAt.toISOString(),
  };
  let result;
  log(`── ${bench.name}: ${bench.title}`);
  try {
    const out = await bench.run(ctx);
    result = { ...base, status: 'ok', ...out };
  } catch (error) {
    const skipped = error instanceof UnavailableError;
    result = { ...base, status: skipped ? 'skipped' : 'failed', reason: error?.stack ?? String(error) };
    log(`${bench.name} ${skipped ? 'SKIPPED' : 'FAILED'}: ${skipped ? error.message : result.reason}`);
  }
  result.durationMs = Math.round(performance.now() - t0);
  result.load1 = { before: loadBefore, after: load1() };
  result.machine = machine;
  result.notes ??= [];
  const path = writeResult(outDir, reorder(result));
  if (result.status === 'ok') {
    process.stdout.write(`\n### ${bench.name}: ${bench.title}\n\n${result.table}\n`);
    for (const note of result.notes) process.stdout.write(`\n- ${note}`);
    process.stdout.write('\n');
  }
  log(`${bench.name}: ${result.status} in ${(result.durationMs / 1000).toFixed(1)} s → ${path}`);
  outcomes.push(result);
}

const total = (performance.now() - runStarted) / 1000;
process.stdout.write(`\n| benchmark | status | time |\n|---|---|---:|\n`);
for (const r of outcomes) {
  process.stdout.write(`| ${r.benchmark} | ${r.status} | ${(r.durationMs / 1000).toFixed(1)} s |\n`);
}
process.stdout.write(
  `\nTotal: ${total.toFixed(1)} s${stray.length ? `, ${stray.length} stray rejection(s)` : ''}\n`,
);

if (!quick && resolve(outDir) === resolve(defaultOut)) {
  if (selected.length === benchmarks.length) {
    const run = {
      totalMs: Math.round(total * 1000),
      finishedAt: new Date().toISOString(),
      benchmarks: outcomes.map((r) => ({ name: r.benchmark, status: r.status, durationMs: r.durationMs })),
    };
    writeFileSync(join(outDir, '_run.json'), `${JSON.stringify(run, null, 2)}\n`);
  }
  if (!values['skip-docs']) {
    const { before, after, docs } = updateDocs({ results: outDir });
    if (before !== after) {
      writeFileSync(docs, after);
      log(`refreshed the tables in ${docs}`);
    }
  }
}

const failed = outcomes.some((r) => r.status === 'failed');
const skipped = outcomes.some((r) => r.status === 'skipped');
process.exitCode = failed ? 1 : skipped && !values['allow-skip'] ? 2 : 0;
// Client libraries (keep-alive agents, pools) may hold the loop open; everything was closed or is garbage.
setTimeout(() => process.exit(), 500).unref();

function reorder(r) {
  const {
    format,
    benchmark,
    title,
    description,
    status,
    reason,
    quick: q,
    startedAt,
    durationMs,
    load1: l,
    machine: m,
    parameters,
    rounds,
    summary,
    table,
    notes,
    ...rest
  } = r;
  return {
    format,
    benchmark,
    title,
    description,
    status,
    ...(reason ? { reason } : {}),
    quick: q,
    startedAt,
    durationMs,
    load1: l,
    machine: m,
    parameters,
    summary,
    table,
    notes,
    ...rest,
    rounds,
  };
}
