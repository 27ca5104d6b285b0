import { type ChildProcess, spawn } from 'node:child_process';
import { constants } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { WorkerStats } from '@baton/core';

/** The `baton` binary of the installed `@baton/cli`: each child worker is what users run. */
const BIN = fileURLToPath(import.meta.resolve('@baton/cli/bin'));
const HANDLER = fileURLToPath(new URL('./handler.js', import.meta.url));

/** Environment variables of the user's shell that must not leak into the demo's workers. */
const FOREIGN = /^(BATON_|CONSUL_|AWS_|PG[A-Z]+$|DATABASE_URL$)/;

/** Options of {@link ChildWorker}. */
export interface ChildWorkerOptions {
  name: string;
  concurrency: number;
  env: Readonly<Record<string, string>>;
  everyMs: number;
}

/**
 * A `baton worker` child process running the demo handler. Follows its JSON log on stdout: the periodic
 * `stats` lines, `task completed` lines, and the final `worker stopped` line with its counters.
 */
export class ChildWorker {
  readonly name: string;
  readonly exited: Promise<number>;
  /** Resolves once the worker logged `worker started`, or exited without doing so. */
  readonly ready: Promise<void>;
  #markReady: () => void = () => {};
  #stats: WorkerStats | undefined;
  #completedLines = 0;
  #stopped = false;
  #stderr: string[] = [];
  #exitCode: number | undefined;
  readonly #child: ChildProcess;

  constructor(options: ChildWorkerOptions) {
    this.name = options.name;
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (value !== undefined && !FOREIGN.test(key)) env[key] = value;
    }
    Object.assign(env, options.env, { BATON_LOG_LEVEL: 'info' });
    this.#child = spawn(
      process.execPath,
      [
        BIN,
        'worker',
        '--handler',
        HANDLER,
        '--id',
        options.name,
        '--concurrency',
        String(options.concurrency),
        '--every',
        `${options.everyMs}ms`,
        '--stats-every',
        '200ms',
        '--heartbeat-every',
        '1s',
        '--stop-grace',
        '10s',
      ],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.ready = new Promise((resolve) => {
      this.#markReady = resolve;
    });
    createInterface({ input: this.#child.stdout! }).on('line', (line) => this.#onLog(line));
    createInterface({ input: this.#child.stderr! }).on('line', (line) => {
      this.#stderr.push(line);
      if (this.#stderr.length > 20) this.#stderr.shift();
    });
    // 'close', not 'exit': 'exit' can come before the last lines of stdout (the `worker stopped` line with
    // the final counters) have been read.
    this.exited = new Promise((resolve) => {
      this.#child.once('close', (code, signal) => {
        this.#exitCode = code ?? 128 + (signal ? constants.signals[signal] : 0);
        this.#markReady();
        resolve(this.#exitCode);
      });
      this.#child.once('error', (error) => {
        this.#stderr.push(String(error));
        this.#exitCode = 1;
        this.#markReady();
        resolve(1);
      });
    });
  }

  /** Latest counters: from the last stats line, with completions counted from the log since. */
  get stats(): WorkerStats | undefined {
    if (!this.#stats) return undefined;
    return { ...this.#stats, completed: Math.max(this.#stats.completed, this.#completedLines) };
  }

  /** The counters of the `worker stopped` line, once the worker stopped cleanly. */
  get finalStats(): WorkerStats | undefined {
    return this.#stopped ? this.#stats : undefined;
  }

  get exitCode(): number | undefined {
    return this.#exitCode;
  }

  /** The last lines the worker wrote on stderr (its error report, if it failed). */
  get stderr(): string {
    return this.#stderr.join('\n');
  }

  /** SIGTERM: the worker stops gracefully and exits with 143. */
  stop(): void {
    if (this.#exitCode === undefined) this.#child.kill('SIGTERM');
  }

  kill(): void {
    if (this.#exitCode === undefined) this.#child.kill('SIGKILL');
  }

  #onLog(line: string): void {
    let entry: { msg?: unknown; stats?: WorkerStats; level?: unknown; err?: unknown };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      return;
    }
    if (entry.msg === 'task completed') this.#completedLines++;
    else if (entry.msg === 'worker started') this.#markReady();
    else if ((entry.msg === 'stats' || entry.msg === 'worker stopped') && entry.stats) {
      this.#stats = entry.stats;
      if (entry.msg === 'worker stopped') this.#stopped = true;
    } else if (entry.level === 'error' || entry.level === 'fatal') {
      this.#stderr.push(line);
    }
  }
}
