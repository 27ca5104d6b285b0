// CPU accounting for the task benchmarks, from /proc (Linux): how much CPU the PostgreSQL server spent, and
// how busy the whole machine was (our processes and everybody else's). Elsewhere these read as undefined.

import { readdirSync, readFileSync } from 'node:fs';
import { median } from './stats.mjs';
import { num } from './table.mjs';

const TICK_MS = 10; // USER_HZ is 100 on every Linux we run on

/**
 * CPU time (ms) used so far by each PostgreSQL backend serving `database` (their process title names the
 * database, e.g. `postgres: 15/main: postgres baton_bench 127.0.0.1(5432) idle`), by pid. Other databases on
 * the same server (colleagues' test runs) are left out. A backend that exits takes its time with it, so
 * callers read this while their connections are still open.
 */
export function postgresCpuByPid(database) {
  const out = new Map();
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
    out.set(pid, (Number(fields[11]) + Number(fields[12])) * TICK_MS);
  }
  return out.size ? out : undefined;
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
 * `database` used (those still running at the end: a backend that exited meanwhile is left out), and the share
 * of all cores that was busy (anyone's work) over the interval.
 */
export function cpuMeter(database) {
  const pg0 = postgresCpuByPid(database) ?? new Map();
  const m0 = machineCpu();
  return {
    stop() {
      // Per backend, so that one that exits during the interval (a pool closing a connection) takes only its
      // own time with it instead of making the total go down.
      const pg1 = postgresCpuByPid(database);
      const m1 = machineCpu();
      let postgresCpuMs;
      if (pg1) {
        postgresCpuMs = 0;
        for (const [pid, ms] of pg1) postgresCpuMs += ms - (pg0.get(pid) ?? 0);
      }
      return {
        postgresCpuMs,
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
