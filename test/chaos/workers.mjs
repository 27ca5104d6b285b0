// `baton worker` processes (the real CLI), one per slot. A slot keeps its proxies across incarnations: a
// restarted worker comes back behind the same (possibly still faulty) network.

import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';

/** Exit codes that are not crashes: SIGTERM after a graceful stop, and "backend unreachable at start". */
const EXPECTED_EXIT_CODES = new Set([0, 3, 143]);

/**
 * Spawns a worker in its own process group. In the harness's group, a worker paused by a fault (SIGSTOP) when
 * the shell that started the harness exits would be killed: the kernel sends SIGHUP to a process group that
 * becomes orphaned while a member is stopped. The harness still kills every worker when it exits.
 *
 * @param {string} command
 * @param {string[]} args
 * @param {import('node:child_process').SpawnOptions} options
 */
export function spawnWorkerProcess(command, args, options) {
  return spawn(command, args, { ...options, detached: true });
}

/**
 * One worker slot: spawns `baton worker` incarnations (`w2-1`, `w2-2`, ...), kills, pauses and resumes
 * them, and restarts one that exited on its own (as a supervisor would).
 */
export class WorkerSlot {
  /** @type {import('node:child_process').ChildProcess | undefined} */
  process;
  incarnation = 0;
  /** `running`, `paused`, `down` (killed, waiting to restart) or `stopped`. */
  state = 'down';
  /** Worker ids and their log files, every incarnation. */
  logs = [];
  /** Exits the harness did not cause, with a code that means a crash. */
  crashes = [];
  /** Incarnations started with a skewed wall clock. */
  skewed = [];
  #restartTimer;
  #stopping = false;

  /**
   * @param {object} options
   * @param {number} options.index
   * @param {string} options.root repository root
   * @param {string} options.dir where worker logs go
   * @param {string[]} options.args `baton worker` arguments after `--id`
   * @param {() => Record<string, string>} options.env environment of a new incarnation
   * @param {() => number} options.skewMs wall-clock skew of a new incarnation
   * @param {(event: Record<string, unknown>) => void} options.log harness event log
   */
  constructor(options) {
    this.options = options;
    this.name = `w${options.index}`;
  }

  get id() {
    return `${this.name}-${this.incarnation}`;
  }

  /** Starts a new incarnation. */
  start() {
    clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
    if (this.#stopping) return;
    this.incarnation++;
    const id = this.id;
    const { root, dir, args, log } = this.options;
    const file = join(dir, `${id}.log`);
    const fd = openSync(file, 'a');
    const skewMs = this.options.skewMs();
    const env = {
      ...this.options.env(),
      ...(skewMs !== 0 ? { BATON_TEST_CLOCK_SKEW_MS: String(skewMs) } : {}),
    };
    const child = spawnWorkerProcess(
      process.execPath,
      [join(root, 'packages/cli/dist/bin.js'), 'worker', '--id', id, ...args],
      { cwd: root, env, stdio: ['ignore', fd, fd] },
    );
    closeSync(fd);
    this.process = child;
    this.state = 'running';
    this.logs.push({ id, file });
    if (skewMs !== 0) this.skewed.push({ id, skewMs });
    log({ type: 'worker-start', worker: id, pid: child.pid, skewMs });
    child.on('exit', (code, signal) => {
      if (this.process !== child) return;
      this.process = undefined;
      const expected = this.#stopping || this.state === 'down' || EXPECTED_EXIT_CODES.has(code ?? -1);
      log({ type: 'worker-exit', worker: id, code, signal, expected });
      if (!expected) this.crashes.push({ id, code, signal });
      if (this.#stopping) {
        this.state = 'stopped';
        return;
      }
      if (this.state !== 'down') {
        // It exited on its own: restart it after a moment, like a supervisor.
        this.state = 'down';
        this.#restartTimer = setTimeout(() => this.start(), 1_000);
      }
    });
    return id;
  }

  /** SIGKILL now; a new incarnation starts after `restartAfterMs`. */
  kill(restartAfterMs) {
    const child = this.process;
    if (!child) return false;
    this.state = 'down';
    child.kill('SIGKILL');
    clearTimeout(this.#restartTimer);
    this.#restartTimer = setTimeout(() => this.start(), restartAfterMs);
    return true;
  }

  /** SIGSTOP: the process freezes, believing it still holds its leases when it wakes. */
  pause() {
    if (this.state !== 'running' || !this.process) return false;
    this.process.kill('SIGSTOP');
    this.state = 'paused';
    return true;
  }

  /** SIGCONT. */
  resume() {
    if (this.state !== 'paused' || !this.process) return false;
    this.process.kill('SIGCONT');
    this.state = 'running';
    return true;
  }

  /** Makes sure an incarnation runs (resumes a paused one, starts one when down). */
  ensureRunning() {
    if (this.state === 'paused') this.resume();
    if (this.state === 'down') this.start();
  }

  /** Graceful stop: SIGTERM, then SIGKILL after `timeoutMs`. */
  async stop(timeoutMs = 15_000) {
    this.#stopping = true;
    clearTimeout(this.#restartTimer);
    const child = this.process;
    if (!child) {
      this.state = 'stopped';
      return;
    }
    if (this.state === 'paused') child.kill('SIGCONT');
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
    this.state = 'stopped';
  }
}
