// Runs one SPIN check of a model (spec/baton.pml, spec/buckets.pml, spec/semaphore.pml): generate the verifier (`spin -a`), compile it, run it, read its
// report, and on a violation replay the counterexample into readable lines (the model's printf output).

import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The models, in this directory. */
export const SPEC_DIR = dirname(fileURLToPath(import.meta.url));
/** The per-task model, the default. */
export const MODEL = join(SPEC_DIR, 'baton.pml');

/**
 * @typedef {object} Check
 * @property {string} id
 * @property {string} [model] the model's file in spec/ (default `baton.pml`)
 * @property {'safety' | 'liveness'} kind safety: every assertion, and no invalid end state; liveness: the LTL
 *   formula `finished` under weak fairness
 * @property {Record<string, number>} defines -D switches of the model: sizes, a planted bug, properties off
 * @property {{ pass: true } | { fails: string }} expect `fails`: the property that must be violated
 *   (an assertion's name, or `finished`)
 * @property {number} [hashBits] pan's -w (hash table of 2^n slots); default 24
 * @property {boolean} [shortest] breadth-first search, for the shortest counterexample (small models only)
 * @property {string} [title] what the check shows, one line
 *
 * @typedef {object} CheckResult
 * @property {Check} check
 * @property {boolean} ok the expectation held
 * @property {number} errors errors pan found (it stops at the first)
 * @property {string | undefined} violated the property violated, if any
 * @property {number} states states stored
 * @property {number} transitions
 * @property {number} depth
 * @property {number} memoryMb pan's total actual memory usage
 * @property {number} seconds wall time of the search (pan only, not compiling)
 * @property {string[]} trail readable counterexample (empty when none)
 * @property {string} report pan's own output
 */

/** Throws a clear error when SPIN or a C compiler is missing. */
export async function assertTools() {
  try {
    await run('spin', ['-V']);
  } catch (error) {
    throw new Error('spin is not installed: apt-get update && apt-get install -y spin (Debian/Ubuntu)', {
      cause: error,
    });
  }
  try {
    await run('gcc', ['--version']);
  } catch (error) {
    throw new Error('gcc is not installed: SPIN compiles its verifier with a C compiler', { cause: error });
  }
}

/** `-DNAME=value` switches of a check. */
export function defineFlags(defines) {
  return Object.entries(defines).map(([name, value]) => `-D${name}=${value}`);
}

/**
 * Runs one check in a fresh directory under the OS tmpdir (removed afterwards unless `keep`).
 * @param {Check} check
 * @param {{ keep?: boolean }} [options]
 * @returns {Promise<CheckResult>}
 */
export async function runCheck(check, options = {}) {
  const dir = await mkdtemp(join(tmpdir(), `baton-spin-${check.id}-`));
  try {
    const defines = defineFlags(check.defines);
    const model = join(SPEC_DIR, check.model ?? 'baton.pml');
    await run('spin', ['-a', ...defines, model], { cwd: dir });
    const cc = ['-O2', '-w', '-DMEMLIM=6144', '-o', 'pan', 'pan.c'];
    const pan = [`-w${check.hashBits ?? 24}`];
    if (check.kind === 'safety') {
      cc.push('-DNOCLAIM');
      if (check.shortest) {
        cc.push('-DBFS');
      } else {
        cc.push('-DSAFETY', '-DCOLLAPSE');
        pan.push('-m5000000');
      }
    } else {
      cc.push('-DNFAIR=3', '-DCOLLAPSE');
      pan.push('-a', '-f', '-m5000000', '-N', 'finished');
    }
    await run('gcc', cc, { cwd: dir, maxBuffer: 1 << 24 });
    const started = performance.now();
    const { stdout } = await run('./pan', pan, { cwd: dir, maxBuffer: 1 << 26 });
    const seconds = (performance.now() - started) / 1000;
    const parsed = parseReport(stdout);
    const trail = parsed.errors > 0 ? await replay(dir, defines, model) : [];
    const ok =
      'pass' in check.expect
        ? parsed.errors === 0
        : parsed.errors > 0 && parsed.violated === check.expect.fails;
    return { check, ok, ...parsed, seconds, trail, report: stdout };
  } finally {
    if (!options.keep) await rm(dir, { recursive: true, force: true });
  }
}

/** Reads pan's report. */
export function parseReport(text) {
  const number = (pattern) => {
    const match = pattern.exec(text);
    return match ? Number(match[1]) : Number.NaN;
  };
  const errors = number(/errors: (\d+)/);
  let violated;
  if (errors > 0) {
    const assertion = /assertion violated \(+([a-z_]+)\s*\|\|/.exec(text);
    if (assertion) violated = assertion[1];
    else if (/acceptance cycle \(at depth/.test(text)) violated = 'finished';
    else if (/invalid end state \(at depth/.test(text)) violated = 'end-state';
    else violated = 'unknown';
  }
  return {
    errors,
    violated,
    states: number(/(\d+) states, stored/),
    transitions: number(/(\d+) transitions \(= /),
    depth: number(/depth reached (\d+)/),
    memoryMb: number(/([\d.]+)\s+total actual memory usage/),
  };
}

/** Replays the trail pan wrote: the model's printf lines, the violated property, the cycle if any. */
async function replay(dir, defines, model) {
  const trailFile = `${basename(model)}.trail`;
  const { stdout } = await run('spin', ['-t', '-k', trailFile, ...defines, model], {
    cwd: dir,
    maxBuffer: 1 << 26,
  });
  const lines = [];
  // A step's line is printed in two parts (the request, then its result); a violation between them ends it.
  for (const raw of stdout.replace(/(\S)(spin: )/g, '$1\n$2').split('\n')) {
    if (/^spin: trail ends/.test(raw) || /^#processes/.test(raw)) break;
    const line = raw
      .trim()
      .replace(/\s{2,}/g, ' ')
      .replace(/ ,/g, ',');
    if (line === '' || /^(ltl |spin: warning|Never claim moves)/.test(line)) continue;
    if (line.startsWith('spin: ') && !/assertion|text of failed/.test(line)) continue;
    lines.push(line.includes('START OF CYCLE') ? '--- the cycle that repeats forever starts here ---' : line);
  }
  return lines;
}
