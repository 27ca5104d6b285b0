#!/usr/bin/env node
// Renders the result files into docs/benchmarks.md: every block between `<!-- bench:NAME -->` and
// `<!-- /bench:NAME -->` is replaced with that benchmark's table and notes from bench/results/NAME.json, and
// the `<!-- bench:machine -->` block with the machine and the run. Text outside the markers is left alone.
//
//   node bench/report.mjs [--results DIR] [--docs FILE] [--check]
//
// `npm run bench` calls it after a full run into bench/results/. --check exits 1 if the docs are stale.

import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchDir, repoRoot } from './lib/packages.mjs';

export function renderDocs(docsText, results, run) {
  let text = docsText.replace(
    /(<!-- bench:machine -->)[\s\S]*?(<!-- \/bench:machine -->)/,
    (_, open, close) => `${open}\n${machineBlock(results, run)}\n${close}`,
  );
  for (const result of results) {
    const name = result.benchmark;
    const pattern = new RegExp(`(<!-- bench:${name} -->)[\\s\\S]*?(<!-- /bench:${name} -->)`);
    text = text.replace(pattern, (_, open, close) => `${open}\n${resultBlock(result)}\n${close}`);
  }
  return text;
}

function resultBlock(r) {
  const when = `${r.startedAt.slice(0, 16).replace('T', ' ')} UTC`;
  const meta =
    `_${r.quick ? 'QUICK run (not for comparison)' : 'Full run'} of ${when}, ${(r.durationMs / 1000).toFixed(0)} s, ` +
    `load average ${fmtLoad(r.load1?.before)} → ${fmtLoad(r.load1?.after)} on ${r.machine.cores} cores; ` +
    `from \`bench/results/${r.benchmark}.json\`._`;
  if (r.status !== 'ok') return `${meta}\n\n**${r.status}**: ${String(r.reason).split('\n')[0]}\n`;
  const notes = (r.notes ?? []).map((n) => `- ${n}`).join('\n');
  return `${meta}\n\n${r.table}\n${notes ? `\n${notes}\n` : ''}`;
}

function fmtLoad(value) {
  return Number.isFinite(value) ? value.toFixed(1) : '?';
}

function machineBlock(results, run) {
  const m = results[0]?.machine;
  if (!m) return '_No results yet._';
  const packages = Object.entries(m.packages)
    .filter(([, v]) => v)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const total = run?.totalMs ? `; the whole run took ${(run.totalMs / 60_000).toFixed(1)} min` : '';
  return [
    `- Machine: ${m.cpuModel}, ${m.cores} cores, ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB, ${m.platform}; Node ${m.node}.`,
    `- Commit ${m.commit?.slice(0, 12) ?? 'unknown'}${total}.`,
    `- Versions: ${packages}.`,
  ].join('\n');
}

export function loadResults(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json') && !f.startsWith('_'))
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')));
}

export function updateDocs({
  results: dir = join(benchDir, 'results'),
  docs = join(repoRoot, 'docs', 'benchmarks.md'),
} = {}) {
  const results = loadResults(dir);
  const runPath = join(dir, '_run.json');
  const run = existsSync(runPath) ? JSON.parse(readFileSync(runPath, 'utf8')) : undefined;
  const before = existsSync(docs) ? readFileSync(docs, 'utf8') : '';
  const after = renderDocs(before, results, run);
  return { before, after, docs };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      results: { type: 'string' },
      docs: { type: 'string' },
      check: { type: 'boolean', default: false },
    },
  });
  const { before, after, docs } = updateDocs({
    ...(values.results ? { results: values.results } : {}),
    ...(values.docs ? { docs: values.docs } : {}),
  });
  if (values.check) {
    if (before !== after) {
      process.stderr.write(`${docs} is not up to date with the results: run node bench/report.mjs\n`);
      process.exit(1);
    }
  } else if (before !== after) {
    writeFileSync(docs, after);
    process.stdout.write(`updated ${docs}\n`);
  } else {
    process.stdout.write(`${docs} already up to date\n`);
  }
}
