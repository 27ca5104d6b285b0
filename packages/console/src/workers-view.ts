import { beatCounters, type WorkerBeatCounters } from '@baton/core';
import { iso } from './queries.js';

/** How many heartbeat intervals may pass without a beat before a running worker is shown as silent. */
export const SILENT_AFTER_INTERVALS = 3;

/**
 * What the console knows of a worker's life: `alive` (its latest beat is at most
 * {@link SILENT_AFTER_INTERVALS} intervals old by the database's clock), `silent` (it missed them: crashed,
 * paused, or cut off from the database), `stopped` (it said so on a clean stop), or `unknown`: it publishes no
 * heartbeat (a worker of a baton version before the heartbeat, or with it turned off), and only the tasks
 * table shows it.
 */
export type WorkerState = 'alive' | 'silent' | 'stopped' | 'unknown';

/** A worker as the console shows it: its heartbeat (when it has one) merged with what the tasks table says. */
export interface WorkerRow {
  id: string;
  state: WorkerState;
  /** From its heartbeat (null for `unknown`). */
  host: string | null;
  pid: number | null;
  mode: string | null;
  locks: string | null;
  intervalMs: number | null;
  /** When it started (the database's clock), or null without a heartbeat. */
  startedAt: string | null;
  /** Its latest beat (the database's clock) and that beat's age at the snapshot. */
  lastBeatAt: string | null;
  beatAgeMs: number | null;
  stoppedAt: string | null;
  /** Tasks it runs now, by the tasks table (status running, claimed by it). */
  running: number;
  /** Claim time of its oldest running task. */
  runningSince: string | null;
  /** Up to 5 ids of the tasks it runs now, oldest claim first. */
  tasks: string[];
  /** Finished in the last 5 minutes (the tasks table). */
  done: number;
  dead: number;
  /** Its latest finish within the last 5 minutes. */
  lastFinishedAt: string | null;
  /** Its counters since it started (its latest beat). */
  counters: WorkerBeatCounters | null;
  /**
   * Per minute, from the counters of its last two beats (null until it beat twice in this run, and once it
   * stopped).
   */
  rates: { done: number; failed: number; dead: number } | null;
}

type Row = Readonly<Record<string, unknown>>;

function blank(id: string): WorkerRow {
  return {
    id,
    state: 'unknown',
    host: null,
    pid: null,
    mode: null,
    locks: null,
    intervalMs: null,
    startedAt: null,
    lastBeatAt: null,
    beatAgeMs: null,
    stoppedAt: null,
    running: 0,
    runningSince: null,
    tasks: [],
    done: 0,
    dead: 0,
    lastFinishedAt: null,
    counters: null,
    rates: null,
  };
}

/**
 * Merges the workers table (`beats`: one row per worker that publishes a heartbeat) with the tasks table's
 * running and recently finished tasks per worker. Workers with a heartbeat come first (alive, silent,
 * stopped, as the statement orders them), then those the tasks table alone shows, by id.
 */
export function toWorkers(
  beats: readonly unknown[],
  running: readonly unknown[],
  recent: readonly unknown[],
): WorkerRow[] {
  const byId = new Map<string, WorkerRow>();
  for (const r of beats as readonly Row[]) {
    const worker = blank(String(r.worker_id));
    const intervalMs = Number(r.interval_ms);
    const ageMs = Math.max(0, Number(r.age_ms));
    worker.state =
      r.state === 'stopped' ? 'stopped' : ageMs <= SILENT_AFTER_INTERVALS * intervalMs ? 'alive' : 'silent';
    worker.host = String(r.host);
    worker.pid = Number(r.pid);
    worker.mode = String(r.mode);
    worker.locks = String(r.locks);
    worker.intervalMs = intervalMs;
    worker.startedAt = iso(r.started_at);
    worker.lastBeatAt = iso(r.beat_at);
    worker.beatAgeMs = Math.round(ageMs);
    worker.stoppedAt = iso(r.stopped_at);
    worker.counters = beatCounters(json(r.counters));
    // A stopped worker runs nothing: the span before its stop beat says nothing about a rate now.
    worker.rates =
      worker.state === 'stopped' ? null : rates(worker.counters, r.prev_counters, Number(r.span_ms));
    byId.set(worker.id, worker);
  }
  const withBeats = byId.size;
  const row = (id: string): WorkerRow => {
    let worker = byId.get(id);
    if (!worker) {
      worker = blank(id);
      byId.set(id, worker);
    }
    return worker;
  };
  for (const r of running as readonly Row[]) {
    const worker = row(String(r.worker_id));
    worker.running = Number(r.running);
    worker.runningSince = iso(r.since);
    worker.tasks = ((r.tasks as unknown[] | null) ?? []).map(String);
  }
  for (const r of recent as readonly Row[]) {
    const worker = row(String(r.worker_id));
    worker.done = Number(r.done);
    worker.dead = Number(r.dead);
    worker.lastFinishedAt = iso(r.last);
  }
  const all = [...byId.values()];
  const unknown = all.slice(withBeats).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return [...all.slice(0, withBeats), ...unknown];
}

/** Per-minute rates between two beats of one run; null without a previous beat or time between them. */
function rates(counters: WorkerBeatCounters, previousJson: unknown, spanMs: number): WorkerRow['rates'] {
  if (previousJson === null || previousJson === undefined || !(spanMs > 0)) return null;
  const previous = beatCounters(json(previousJson));
  const perMinute = (now: number, before: number) =>
    Math.round((Math.max(0, now - before) / spanMs) * 60_000 * 10) / 10;
  return {
    done: perMinute(counters.completed, previous.completed),
    failed: perMinute(counters.failed, previous.failed),
    dead: perMinute(counters.dead, previous.dead),
  };
}

function json(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value);
  } catch {
    return null;
  }
}
