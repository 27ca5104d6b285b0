// CPU accounting for the task benchmarks, from /proc (Linux): how much CPU the PostgreSQL server spent, and
// how busy the whole machine was (our processes and everybody else's). Elsewhere these read as undefined.

import { readdirSync, readFileSync } from 'node:fs';
import { median } from './stats.mjs';
import { num } from './table.mjs';

const TICK_MS = 10; // USER_HZ is 100 on every Linux we run on

/**
 * CPU time (ms) used so far by the PostgreSQL backends serving `database` (their process title names the
 * database, e.g. `postgres: 15/main: postgres baton_bench 127.0.0.1(5432) idle`). Other databases on the same
 * server (colleagues' test runs) are left out. A backend that exits takes its time with it, so callers read
 * this while their connections are still open.
 */
export function postgresCpuMs(database) {
  let ticks = 0;
  let seen = false;
  let entries;
  try {
    entries = readdirSync('/proc');
  } catch {
    return undefined;
  }
  for (const pid of entries) {
    if (!/^\d+$/.test(pid)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    if (!comm.startsWith('postgres')) continue;
    if (database) {
      let title = '';
      try {
        title = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      if (!title.includes(` ${database} `)) continue;
    }
    const fields = stat.slice(close + 2).split(' ');
    // fields[11] = utime, fields[12] = stime (the 14th and 15th fields of /proc/PID/stat)
    ticks += Number(fields[11]) + Number(fields[12]);
    seen = true;
  }
  return seen ? ticks * TICK_MS : undefined;
}

/** Busy and total CPU time of the machine (all cores, ms) from /proc/stat. */
export function machineCpu() {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const [, ...values] = line.trim().split(/\s+/);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = values.map(Number);
    const busy = user + nice + system + irq + softirq + steal;
    return { busyMs: busy * TICK_MS, totalMs: (busy + idle + iowait) * TICK_MS };
  } catch {
    return undefined;
  }
}

/**
 * Starts measuring; `stop()` returns `{ postgresCpuMs, machineBusy }`: CPU ms the PostgreSQL backends of
 * `database` used, and the share of all cores that was busy (anyone's work) over the interval.
 */
export function cpuMeter(database) {
  const pg0 = postgresCpuMs(database);
  const m0 = machineCpu();
  return {
    stop() {
      const pg1 = postgresCpuMs(database);
      const m1 = machineCpu();
      return {
        postgresCpuMs: pg0 !== undefined && pg1 !== undefined ? pg1 - pg0 : undefined,
        machineBusy: m0 && m1 ? (m1.busyMs - m0.busyMs) / Math.max(1, m1.totalMs - m0.totalMs) : undefined,
      };
    },
  };
}

/** `process.cpuUsage()` as milliseconds. */
export function processCpuMs(usage = process.cpuUsage()) {
  return (usage.user + usage.system) / 1000;
}

/** Medians over rounds of the CPU figures `startCpu().stop()` returns (rounds carry them as `cpu`). */
export function cpuSummary(rounds) {
  const med = (f) => median(rounds.map((r) => f(r.cpu ?? {})).filter((v) => v !== undefined && v !== null));
  return {
    workersMsPerTask: med((c) => c.perTaskMs?.workers),
    serverMsPerTask: med((c) => c.perTaskMs?.server),
    postgresMsPerTask: med((c) => c.perTaskMs?.postgres),
    machineBusy: med((c) => c.machineBusy),
  };
}

/** `0.42 : 0.10 : 0.31` (ms per task), `–` where unknown. */
export function cpuCell(c) {
  return [c.workersMsPerTask, c.serverMsPerTask, c.postgresMsPerTask].map((v) => num(v, 2)).join(' : ');
}
