import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const fixture = fileURLToPath(new URL('./fixtures/pause-and-exit.mjs', import.meta.url));
const started: number[] = [];

/**
 * Runs the fixture in a process group of its own within this session (as a shell with job control runs a
 * job: perl's `setpgrp` stands in for the shell), and returns the pid of the child it paused before exiting.
 */
async function pausedChildOfExitedParent(mode: 'own-group' | 'shared-group'): Promise<number> {
  const parent = spawn(
    'perl',
    ['-e', 'setpgrp(0, 0) or die $!; exec @ARGV or die $!', process.execPath, fixture, mode],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  parent.stdout.on('data', (chunk) => {
    out += chunk;
  });
  const code = await new Promise((resolve) => parent.once('exit', resolve));
  expect(code).toBe(0);
  const pid = Number(out.trim());
  started.push(pid);
  return pid;
}

/** The child's state letter, or `gone` once it has exited (a reaped or zombie process counts as gone). */
function stateOf(pid: number): string {
  const file = `/proc/${pid}/stat`;
  if (!existsSync(file)) return 'gone';
  try {
    const state = readFileSync(file, 'utf8').replace(/^.*\) /, '')[0] ?? 'gone';
    return state === 'Z' ? 'gone' : state;
  } catch {
    return 'gone';
  }
}

async function settledState(pid: number): Promise<string> {
  // SIGHUP (and SIGCONT) are sent synchronously at the parent's exit; give the child time to act on them.
  for (let i = 0; i < 40; i++) {
    if (stateOf(pid) === 'gone') return 'gone';
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return stateOf(pid);
}

afterEach(() => {
  for (const pid of started.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
});

describe.runIf(process.platform === 'linux')('chaos workers and the process group of the harness', () => {
  it('a paused child in the exiting parent’s group is killed by SIGHUP (what the harness must avoid)', async () => {
    const pid = await pausedChildOfExitedParent('shared-group');
    expect(await settledState(pid)).toBe('gone');
  });

  it('a paused worker started by the harness survives its parent’s exit, still stopped', async () => {
    const pid = await pausedChildOfExitedParent('own-group');
    expect(await settledState(pid)).toBe('T');
  });
});
