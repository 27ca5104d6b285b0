// Closed-loop load generation: `concurrency` lanes each run `op` back to back until the time is up.

import { latencySummary } from './stats.mjs';

/**
 * Runs `op(lane, iteration)` in `concurrency` parallel lanes for `durationMs` (after `warmupMs` of unmeasured
 * warm-up). Returns operations per second, latency percentiles (ms) and this process's CPU time per operation
 * (µs) of the measured operations. `around.before()` / `around.after(beforeValue)` run just before and just
 * after the measured part (e.g. to read a server's CPU); `after`'s value is returned as `around`. An error in
 * any lane stops every lane and is thrown.
 */
export async function closedLoop({ concurrency, durationMs, warmupMs = 0, op, around }) {
  let iteration = 0;
  let failure;
  const lane = async (id, until, samples) => {
    while (failure === undefined && performance.now() < until) {
      const i = iteration++;
      const t0 = performance.now();
      try {
        await op(id, i);
      } catch (error) {
        failure ??= error;
        return;
      }
      samples?.push(performance.now() - t0);
    }
  };
  if (warmupMs > 0) {
    const until = performance.now() + warmupMs;
    await Promise.all(Array.from({ length: concurrency }, (_, id) => lane(id, until)));
    if (failure !== undefined) throw failure;
  }
  const samples = [];
  const outside = await around?.before();
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const until = started + durationMs;
  await Promise.all(Array.from({ length: concurrency }, (_, id) => lane(id, until, samples)));
  const elapsedMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const aroundResult = await around?.after(outside);
  if (failure !== undefined) throw failure;
  const latency = latencySummary(samples);
  return {
    ops: samples.length,
    elapsedMs,
    opsPerSec: (samples.length / elapsedMs) * 1000,
    latency,
    // CPU time this process spent per operation (µs): the client's own cost, far less sensitive to other
    // load on the machine than wall time.
    cpuUsPerOp: (cpu.user + cpu.system) / samples.length,
    around: aroundResult,
  };
}

/**
 * Interleaves rounds of several contestants: round r runs every contestant once, in an order that rotates
 * each round (A B C, B C A, C A B, ...), so drift in machine load hits every contestant alike.
 * `run(contestant, round)` returns the round's measurements. Returns `{ [contestant]: [round results] }`.
 */
export async function interleave(contestants, rounds, run) {
  const out = Object.fromEntries(contestants.map((c) => [c, []]));
  for (let r = 0; r < rounds; r++) {
    const order = contestants.map((_, i) => contestants[(i + r) % contestants.length]);
    for (const c of order) out[c][r] = await run(c, r);
  }
  return out;
}
