// What the numbers were measured on: stored with every result file.

import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { packageVersions, repoRoot } from './packages.mjs';

function git(args) {
  try {
    return execFileSync('git', args, {
      cwd: repoRoot,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return undefined;
  }
}

/** CPU model, cores, memory, load, node version, package versions and the git commit. */
export function machineInfo() {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model?.trim() ?? 'unknown',
    cores: cpus.length,
    availableParallelism: os.availableParallelism?.() ?? cpus.length,
    memoryBytes: os.totalmem(),
    loadAverage: os.loadavg(),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    packages: packageVersions(),
    commit: git(['rev-parse', 'HEAD']),
  };
}

/** The 1-minute load average now: recorded before and after each benchmark to show how busy the machine was. */
export function load1() {
  return os.loadavg()[0];
}
