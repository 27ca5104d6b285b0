import type { WorkerStats } from '@baton/core';

/** One worker's counters as the demo shows them. */
export interface WorkerView {
  readonly name: string;
  readonly stats:
    | (Pick<WorkerStats, 'completed' | 'lockAttempts' | 'claimed' | 'inFlight' | 'staleWrites'> &
        Partial<Pick<WorkerStats, 'bucketsHeld' | 'bucketsAcquired'>>)
    | undefined;
  /** `running`, `stopped`, or why it failed. */
  readonly state: string;
}

/** A snapshot for the progress display. */
export interface ProgressSnapshot {
  readonly done: number;
  readonly total: number;
  readonly elapsedMs: number;
  readonly workers: readonly WorkerView[];
}

const BAR = 20;

/**
 * Live progress: on a TTY a block of lines redrawn in place (per-worker bars, tasks/s, lock attempts per
 * task); elsewhere one plain line per update.
 */
export class ProgressDisplay {
  readonly #out: NodeJS.WriteStream;
  readonly #tty: boolean;
  #drawnLines = 0;

  constructor(out: NodeJS.WriteStream = process.stdout) {
    this.#out = out;
    this.#tty = out.isTTY === true && process.env.TERM !== 'dumb';
  }

  get tty(): boolean {
    return this.#tty;
  }

  update(snapshot: ProgressSnapshot): void {
    if (this.#tty) this.#redraw(renderBlock(snapshot));
    else this.#out.write(`${renderLine(snapshot)}\n`);
  }

  /** Leaves the last block on screen. */
  finish(snapshot: ProgressSnapshot): void {
    if (this.#tty) this.#redraw(renderBlock(snapshot));
    else this.#out.write(`${renderLine(snapshot)}\n`);
    this.#drawnLines = 0;
  }

  #redraw(lines: string[]): void {
    const up = this.#drawnLines > 0 ? `\x1b[${this.#drawnLines}F` : '';
    // A wrapped line would throw the cursor-up count off: cut lines at the terminal's width.
    const width = Math.max(20, (this.#out.columns ?? 100) - 1);
    const fit = (line: string) =>
      [...line].length > width ? `${[...line].slice(0, width - 1).join('')}…` : line;
    this.#out.write(`${up}${lines.map((l) => `\x1b[2K${fit(l)}`).join('\n')}\n`);
    this.#drawnLines = lines.length;
  }
}

function totals(snapshot: ProgressSnapshot) {
  let attempts = 0;
  let executed = 0;
  for (const w of snapshot.workers) {
    attempts += w.stats?.lockAttempts ?? 0;
    executed += w.stats?.claimed ?? 0;
  }
  const seconds = snapshot.elapsedMs / 1_000;
  return {
    attempts,
    perTask: executed > 0 ? attempts / executed : 0,
    rate: seconds > 0 ? snapshot.done / seconds : 0,
  };
}

/** The TTY block. */
export function renderBlock(snapshot: ProgressSnapshot): string[] {
  const { perTask, rate } = totals(snapshot);
  const width = Math.max(6, ...snapshot.workers.map((w) => w.name.length));
  const share = (n: number) => (snapshot.total > 0 ? n / snapshot.total : 0);
  const lines = snapshot.workers.map((w) => {
    const completed = w.stats?.completed ?? 0;
    const filled = Math.round(Math.min(1, share(completed) * snapshot.workers.length) * BAR);
    const locks = buckets(snapshot)
      ? `${String(w.stats?.bucketsHeld ?? 0).padStart(6)} buckets held`
      : `${String(w.stats?.lockAttempts ?? 0).padStart(6)} lock attempts`;
    return `  ${w.name.padEnd(width)}  ${'█'.repeat(filled)}${'░'.repeat(BAR - filled)}  ${String(completed).padStart(5)} done  ${locks}  ${w.stats?.inFlight ?? 0} running${w.state === 'running' ? '' : `  (${w.state})`}`;
  });
  const overall = Math.round(share(snapshot.done) * BAR);
  lines.push(
    `  ${'total'.padEnd(width)}  ${'█'.repeat(overall)}${'░'.repeat(BAR - overall)}  ${snapshot.done}/${snapshot.total} done · ${rate.toFixed(
      0,
    )} tasks/s · ${lockFigure(snapshot, perTask)} · ${(snapshot.elapsedMs / 1_000).toFixed(1)}s`,
  );
  return lines;
}

/** True when the workers lease buckets (their stats count bucket leases, not per-task lock attempts). */
function buckets(snapshot: ProgressSnapshot): boolean {
  return snapshot.workers.some((w) => (w.stats?.bucketsAcquired ?? 0) > 0);
}

function lockFigure(snapshot: ProgressSnapshot, perTask: number): string {
  if (!buckets(snapshot)) return `${perTask.toFixed(2)} lock attempts/task`;
  return `buckets held ${snapshot.workers.map((w) => w.stats?.bucketsHeld ?? 0).join('/')}`;
}

/** The plain line. */
export function renderLine(snapshot: ProgressSnapshot): string {
  const { perTask, rate } = totals(snapshot);
  const per = snapshot.workers.map((w) => `${w.name}=${w.stats?.completed ?? 0}`).join(' ');
  return `[${(snapshot.elapsedMs / 1_000).toFixed(1)}s] ${snapshot.done}/${snapshot.total} done · ${rate.toFixed(
    0,
  )} tasks/s · ${lockFigure(snapshot, perTask)} · ${per}`;
}
