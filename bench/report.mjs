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
import { markdownTable, num, pct, ratio } from './lib/table.mjs';

export function renderDocs(docsText, results, run) {
  let text = docsText.replace(
    /(<!-- bench:machine -->)[\s\S]*?(<!-- \/bench:machine -->)/,
    (_, open, close) => `${open}\n${machineBlock(results, run)}\n${close}`,
  );
  text = text.replace(
    /(<!-- bench:summary -->)[\s\S]*?(<!-- \/bench:summary -->)/,
    (_, open, close) => `${open}\n${summaryBlock(results)}\n${close}`,
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
  const how = r.description ? `How: ${r.description}\n\n` : '';
  return `${how}${meta}\n\n${r.table}\n${notes ? `\n${notes}\n` : ''}`;
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

/** The targets (issues 8 and 14) next to this run's figures, each taken from the result files. */
export function summaryBlock(results) {
  const by = Object.fromEntries(results.filter((r) => r.status === 'ok').map((r) => [r.benchmark, r]));
  const rows = [];
  const rt = by['lock-roundtrip'];
  if (rt) {
    for (const backend of [...new Set(rt.summary.map((s) => s.backend))]) {
      const cells = rt.summary.filter((s) => s.backend === backend);
      rows.push([
        `lock-roundtrip ours/raw, ${backend}`,
        '≥ 0.9',
        cells.map((c) => `${c.keys} c${c.concurrency}: ${ratio(c.oursOverRaw)}`).join('; '),
        verdict(cells.every((c) => c.oursOverRaw.median >= 0.9)),
      ]);
    }
  }
  const lp = by['lock-peers'];
  if (lp) {
    rows.push([
      'lock-peers ours/dynamodb-lock-client',
      '> 1',
      lp.summary.map((c) => `${c.keys} c${c.concurrency}: ${ratio(c.oursOverPeer)}`).join('; '),
      verdict(lp.summary.every((c) => c.oursOverPeer.median > 1)),
    ]);
  }
  const sem = by.semaphore;
  if (sem) {
    const cells = sem.summary.filter((s) => s.oursOverPeer);
    if (cells.length) {
      rows.push([
        'semaphore ours/redis-semaphore pairs/s (16 contenders, limit 4)',
        'none set',
        cells.map((c) => `hold ${c.holdMs} ms: ${ratio(c.oursOverPeer)}`).join('; '),
        '–',
      ]);
    }
    rows.push([
      'semaphore: most holders seen at once (limit 4), every backend',
      '≤ 4',
      String(Math.max(...sem.summary.map((s) => s.maxHolders))),
      verdict(sem.summary.every((s) => s.maxHolders <= 4)),
    ]);
  }
  const e2e = by['tasks-e2e'];
  if (e2e) {
    for (const s of e2e.summary) {
      const baton = batonContestant(s.contestant);
      if (!baton) continue;
      if (baton.mode === 'bucket' && baton.defaults) {
        rows.push([
          `tasks-e2e bucket mode at its defaults, ${baton.backend}: tasks/s vs the faster peer`,
          'none set',
          ratio(s.overFasterPeer),
          '–',
        ]);
      } else if (baton.mode === 'bucket') {
        rows.push([
          `tasks-e2e bucket mode, ${baton.backend}: tasks/s vs the faster peer`,
          '≥ 1.0',
          `${ratio(s.overFasterPeer)} (vs graphile-worker ${ratio(s.overGraphileWorker)}; vs pg-boss ${ratio(s.overPgBoss)})`,
          verdict(s.overFasterPeer?.median >= 1),
        ]);
      } else {
        // Issue 14's per-task target (memory, Consul): 0.6 of graphile-worker, whose earlier runs had no batching;
        // judged against both configurations where the run has both.
        const target = baton.backend === 'dynamodb' ? undefined : 0.6;
        const defaults = s.overGraphileDefaults;
        const judged = [`batched ${verdict(s.overGraphileWorker.median >= target)}`];
        if (defaults) judged.push(`defaults ${verdict(defaults.median >= target)}`);
        rows.push([
          `tasks-e2e per-task mode, ${baton.backend}: tasks/s vs graphile-worker (batched${defaults ? '; defaults' : ''})`,
          target ? `≥ ${target}` : 'none set',
          `${ratio(s.overGraphileWorker)}${defaults ? `; ${ratio(defaults)}` : ''} (vs pg-boss ${ratio(s.overPgBoss)})`,
          target ? judged.join(', ') : '–',
        ]);
      }
    }
  }
  const lat = by.latency;
  if (lat) {
    const peer = lat.summary.find((x) => x.contestant === 'graphile-worker');
    for (const s of lat.summary) {
      const baton = batonContestant(s.contestant);
      if (!baton || !peer) continue;
      rows.push([
        `add→start latency, ${baton.mode === 'task' ? 'per-task' : 'bucket'} mode, ${baton.backend}: p50 vs graphile-worker's`,
        'no worse (≤ 1)',
        `${num(s.latency.p50, 1)} ms vs ${num(peer.latency.p50, 1)} ms: ${ratio(s.p50OverPeer)} (p99 ${num(s.latency.p99, 1)} vs ${num(peer.latency.p99, 1)} ms)`,
        verdict(s.p50OverPeer.median <= 1),
      ]);
    }
  }
  const lr = by['lock-requests'];
  if (lr) {
    for (const s of lr.summary.filter((x) => x.mode === 'bucket')) {
      const target = lr.parameters.target;
      const at = `${num(s.tasks)} tasks`;
      rows.push([
        `lock requests per task, bucket mode, ${s.backend}, while running (${at})`,
        `≤ ${target}`,
        num(s.perTaskRunning, 4),
        verdict(s.perTaskRunning <= target),
      ]);
      rows.push([
        `lock requests per task, bucket mode, ${s.backend}, whole life (start + ${at} + stop)`,
        `≤ ${target}`,
        num(s.perTaskWholeLife, 4),
        verdict(s.perTaskWholeLife <= target),
      ]);
    }
    const writes = lr.summary.filter((x) => x.conditionalWritesPerTask !== undefined);
    if (writes.length) {
      rows.push([
        'DynamoDB conditional writes (UpdateItem) per task, while running',
        'reported',
        writes
          .map(
            (x) =>
              `${x.mode === 'task' ? 'per-task' : 'bucket'} mode ${num(x.conditionalWritesPerTask, x.mode === 'task' ? 2 : 4)}`,
          )
          .join('; '),
        '–',
      ]);
    }
  }
  const ct = by.contention;
  if (ct) {
    const defaults = (x) => (x.attemptsInFlight ?? 2) === 2 && (x.pageSize ?? 50) === 50;
    for (const s of ct.summary.filter((x) => x.workers === 8 && defaults(x))) {
      rows.push([
        `contention: lock attempts per task, 8 workers (${s.backend})`,
        '≤ 1.2',
        `${num(s.attemptsPerTask.median, 3)} (${num(s.attemptsPerTask.min, 3)}–${num(s.attemptsPerTask.max, 3)})`,
        verdict(s.attemptsPerTask.median <= 1.2),
      ]);
    }
  }
  const sc = by.scaling;
  const at8 = sc?.summary.find((s) => s.processes === 8);
  if (at8) {
    rows.push([
      'scaling: efficiency at 8 processes',
      '≥ 85%',
      `${pct(at8.efficiency.median)} (${pct(at8.efficiency.min)}–${pct(at8.efficiency.max)})`,
      verdict(at8.efficiency.median >= 0.85),
    ]);
  }
  const to = by.takeover;
  if (to) {
    for (const s of to.summary) {
      rows.push([
        `takeover after ${s.mode}, ${s.backend} (TTL ${num(to.parameters.ttlMs / 1000, 1)} s, lock-delay ${num(to.parameters.lockDelayMs / 1000, 1)} s)`,
        `within ${num(s.bound.min / 1000, 2)}–${num(s.bound.max / 1000, 2)} s`,
        `${num(s.takeoverMs.median / 1000, 2)} s (${num(s.takeoverMs.min / 1000, 2)}–${num(s.takeoverMs.max / 1000, 2)})`,
        verdict(s.takeoverMs.max <= s.bound.max && s.takeoverMs.min >= s.bound.min * 0.9),
      ]);
    }
  }
  const mem = by.memory;
  const slope = mem?.summary.find((s) => s.mode === 'stream' && s.slopePer100k)?.slopePer100k;
  if (slope) {
    const mb = (b) => `${b >= 0 ? '+' : ''}${num(b / 2 ** 20, 2)} MiB`;
    rows.push([
      'memory: heap per 100k more due tasks (after GC)',
      'flat',
      `between passes ${mb(slope.endHeap)}; peak within a pass ${mb(slope.peakHeap)}`,
      verdict(Math.abs(slope.peakHeap) < 2 ** 20 && Math.abs(slope.endHeap) < 2 ** 20),
    ]);
  }
  if (rows.length === 0) return '_No results yet._';
  return markdownTable(['figure', 'target', 'this run (median, min–max)', 'met'], rows);
}

/**
 * `{ mode, backend, defaults }` of a baton contestant (`baton-<mode>-<backend>[@defaults]`; older files:
 * `baton-<backend>`, per task).
 */
function batonContestant(name) {
  const m = /^baton-(?:(task|bucket)-)?([a-z]+)(@defaults)?$/.exec(name);
  return m ? { mode: m[1] ?? 'task', backend: m[2], defaults: Boolean(m[3]) } : undefined;
}

function verdict(ok) {
  return ok ? 'yes' : '**no**';
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
