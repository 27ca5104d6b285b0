import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Worker, WorkerStats } from '@baton/core';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

type LockCounts = { -readonly [K in 'lockAttempts' | 'acquired' | 'notAcquired']: WorkerStats[K] };

/** Label values of `baton_tasks_total{outcome}`. */
export type TaskOutcome = 'completed' | 'failed' | 'dead' | 'skipped';

/**
 * Prometheus metrics of one or more workers in this process. Counters move with the workers' typed events;
 * the lock-attempt counters follow `worker.stats()` (updated on every lock event and at each scrape), so they
 * are exact even for attempts that end without an event.
 */
export class WorkerMetrics {
  readonly registry: Registry;
  readonly #lockAttempts: Counter;
  readonly #acquired: Counter;
  readonly #notAcquired: Counter;
  readonly #leaseLost: Counter;
  readonly #tasks: Counter<'outcome'>;
  readonly #duration: Histogram<'kind' | 'outcome'>;
  readonly #staleWrites: Counter<'operation'>;
  readonly #sessionsLost: Counter;
  readonly #errors: Counter<'phase'>;
  readonly #abandoned: Counter;
  readonly #passes: Counter<'outcome'>;
  readonly #limitSkipped: Counter<'kind'>;
  readonly #leader: Gauge<'key'>;
  readonly #retentionLeader: Gauge<'key'>;
  readonly #retentionRuns: Counter<'key'>;
  readonly #retentionDeleted: Counter<'key' | 'status'>;
  readonly #workers = new Map<Worker, LockCounts>();
  /** Due tasks each worker's last finished pass saw (task mode; bucket mode has no passes). */
  readonly #lastDue = new Map<Worker, number>();

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registry = new Registry();
    this.registry = registry;
    const registers = [registry];
    // Scrapes bring the lock counters up to date with every worker's stats first.
    const collect = () => {
      for (const worker of this.#workers.keys()) this.#syncLockCounters(worker);
    };
    this.#lockAttempts = new Counter({
      name: 'baton_lock_attempts_total',
      help: 'Task lock attempts (tryAcquire calls that answered; transport errors are not attempts).',
      registers,
      collect,
    });
    this.#acquired = new Counter({
      name: 'baton_locks_acquired_total',
      help: 'Task lock attempts that took the lock.',
      registers,
      collect,
    });
    this.#notAcquired = new Counter({
      name: 'baton_locks_not_acquired_total',
      help: 'Task lock attempts that found the lock held by another worker.',
      registers,
      collect,
    });
    this.#leaseLost = new Counter({
      name: 'baton_lease_lost_total',
      help: 'Task leases lost while their handler ran (the handler was aborted).',
      registers,
    });
    this.#tasks = new Counter({
      name: 'baton_tasks_total',
      help: 'Task outcomes: completed, failed (will retry), dead (final), skipped (lock taken, claim refused).',
      labelNames: ['outcome'],
      registers,
    });
    this.#duration = new Histogram({
      name: 'baton_handler_duration_seconds',
      help: 'Handler run time, from start to the outcome being written.',
      labelNames: ['kind', 'outcome'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
      registers,
    });
    this.#staleWrites = new Counter({
      name: 'baton_stale_writes_total',
      help: 'Outcome writes rejected because a newer fence exists (nothing was applied).',
      labelNames: ['operation'],
      registers,
    });
    this.#sessionsLost = new Counter({
      name: 'baton_sessions_lost_total',
      help: 'Lock sessions lost (the worker opened a new one).',
      registers,
    });
    this.#errors = new Counter({
      name: 'baton_worker_errors_total',
      help: 'Errors the worker recovered from, by phase.',
      labelNames: ['phase'],
      registers,
    });
    this.#limitSkipped = new Counter({
      name: 'baton_tasks_limit_skipped_total',
      help: 'Tasks skipped for a pass because their kind was at its cluster-wide limit (--limit).',
      labelNames: ['kind'],
      registers,
    });
    this.#abandoned = new Counter({
      name: 'baton_handlers_abandoned_total',
      help: 'Handlers that ignored their aborted signal and were left behind.',
      registers,
    });
    this.#passes = new Counter({
      name: 'baton_passes_total',
      help: 'Passes over the due tasks, by how they ended.',
      labelNames: ['outcome'],
      registers,
    });
    this.#leader = new Gauge({
      name: 'baton_leader',
      help: '1 while a worker in this process leads the election key (--leader-key), else 0.',
      labelNames: ['key'],
      registers,
    });
    this.#retentionLeader = new Gauge({
      name: 'baton_retention_leader',
      help: '1 while a worker in this process is the one applying the retention policy of the task table (key retention/<schema>), else 0.',
      labelNames: ['key'],
      registers,
    });
    this.#retentionRuns = new Counter({
      name: 'baton_retention_runs_total',
      help: 'Applications of the retention policy by this process (while elected).',
      labelNames: ['key'],
      registers,
    });
    this.#retentionDeleted = new Counter({
      name: 'baton_retention_deleted_total',
      help: 'Finished tasks the retention policy deleted, by status (done, dead).',
      labelNames: ['key', 'status'],
      registers,
    });
    const lastDue = this.#lastDue;
    new Gauge({
      name: 'baton_due_tasks_seen',
      help: 'Due tasks the last finished pass saw, summed over workers (task mode: a backlog signal read from passes, no extra query).',
      registers,
      collect() {
        let due = 0;
        for (const seen of lastDue.values()) due += seen;
        this.set(due);
      },
    });
    const workers = this.#workers;
    new Gauge({
      name: 'baton_buckets_held',
      help: 'Bucket mode: bucket leases held now.',
      registers,
      collect() {
        let held = 0;
        for (const worker of workers.keys()) held += worker.stats().bucketsHeld;
        this.set(held);
      },
    });
    new Gauge({
      name: 'baton_tasks_in_flight',
      help: 'Handlers running now.',
      registers,
      collect() {
        let running = 0;
        for (const worker of workers.keys()) running += worker.stats().inFlight;
        this.set(running);
      },
    });
    new Gauge({
      name: 'baton_workers',
      help: 'Workers reporting into this registry.',
      registers,
      collect() {
        this.set(workers.size);
      },
    });
    if (options.defaultMetrics ?? true)
      collectDefaultMetrics({ register: registry, prefix: 'baton_process_' });
  }

  /**
   * Starts counting `worker`'s events. Returns a function that stops. `leaderKey`: the election key the
   * worker campaigns on, so `baton_leader{key}` reads 0 from the start (an alert can tell "nobody leads"
   * from "no such metric").
   */
  observe(worker: Worker, options: { leaderKey?: string } = {}): () => void {
    const { lockAttempts, acquired, notAcquired } = worker.stats();
    this.#workers.set(worker, { lockAttempts, acquired, notAcquired });
    if (options.leaderKey !== undefined) this.#leader.set({ key: options.leaderKey }, 0);
    const sync = () => this.#syncLockCounters(worker);
    const offs = [
      worker.on('skipped-locked', sync),
      worker.on('claim-skipped', () => {
        sync();
        this.#tasks.inc({ outcome: 'skipped' });
      }),
      worker.on('task-started', sync),
      worker.on('task-completed', (e) => this.#finished(e.task.kind, 'completed', e.durationMs)),
      worker.on('task-failed', (e) => this.#finished(e.task.kind, 'failed', e.durationMs)),
      worker.on('task-dead', (e) => this.#finished(e.task.kind, 'dead', e.durationMs)),
      worker.on('lease-lost', () => this.#leaseLost.inc()),
      worker.on('stale-write', (e) => this.#staleWrites.inc({ operation: e.operation })),
      worker.on('session-lost', () => this.#sessionsLost.inc()),
      worker.on('error', (e) => this.#errors.inc({ phase: e.phase })),
      worker.on('handler-abandoned', () => this.#abandoned.inc()),
      worker.on('limit-skipped', (e) => this.#limitSkipped.inc({ kind: e.kind })),
      worker.on('pass-finished', (e) => {
        sync();
        this.#passes.inc({ outcome: e.outcome });
        if (e.outcome === 'complete') this.#lastDue.set(worker, e.seen);
      }),
      worker.on('leader-elected', (e) => this.#leader.set({ key: e.key }, 1)),
      worker.on('leader-ended', (e) => this.#leader.set({ key: e.key }, 0)),
      worker.on('stopped', sync),
    ];
    return () => {
      for (const off of offs) off();
      sync();
      this.#workers.delete(worker);
      this.#lastDue.delete(worker);
    };
  }

  /**
   * Retention of the task table under election `key`: the series read 0 from the start (so an alert can
   * tell "nobody prunes" from "no such metric"). Feed it with the returned callbacks.
   */
  observeRetention(key: string): {
    elected(): void;
    ended(): void;
    ran(run: { readonly done: number; readonly dead: number }): void;
  } {
    this.#retentionLeader.set({ key }, 0);
    this.#retentionRuns.inc({ key }, 0);
    this.#retentionDeleted.inc({ key, status: 'done' }, 0);
    this.#retentionDeleted.inc({ key, status: 'dead' }, 0);
    return {
      elected: () => this.#retentionLeader.set({ key }, 1),
      ended: () => this.#retentionLeader.set({ key }, 0),
      ran: (run) => {
        this.#retentionRuns.inc({ key });
        this.#retentionDeleted.inc({ key, status: 'done' }, run.done);
        this.#retentionDeleted.inc({ key, status: 'dead' }, run.dead);
      },
    };
  }

  /** The exposition text of every metric. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  #finished(kind: string, outcome: TaskOutcome, durationMs: number): void {
    this.#tasks.inc({ outcome });
    this.#duration.observe({ kind, outcome }, durationMs / 1_000);
  }

  #syncLockCounters(worker: Worker): void {
    const seen = this.#workers.get(worker);
    if (!seen) return;
    const now = worker.stats();
    const delta = (field: 'lockAttempts' | 'acquired' | 'notAcquired', counter: Counter) => {
      const d = now[field] - seen[field];
      if (d > 0) counter.inc(d);
      seen[field] = now[field];
    };
    delta('lockAttempts', this.#lockAttempts);
    delta('acquired', this.#acquired);
    delta('notAcquired', this.#notAcquired);
  }
}

/** A running `/metrics` endpoint. */
export interface MetricsServer {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

/** Serves `GET /metrics` (Prometheus text format) and `GET /healthz` on `host:port` (port 0: a free one). */
export async function startMetricsServer(
  metrics: WorkerMetrics,
  options: { port: number; host?: string },
): Promise<MetricsServer> {
  const host = options.host ?? '0.0.0.0';
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      metrics.metrics().then(
        (body) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body),
        (error: unknown) => res.writeHead(500).end(String(error)),
      );
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return {
    port,
    url: `http://${shownHost}:${port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
