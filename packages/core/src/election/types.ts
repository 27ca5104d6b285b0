import type { Clock } from '../clock.js';
import type { Lease, SessionOptions } from '../lock.js';

/** A value that survives a JSON round trip unchanged. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/**
 * What observers learn about a leader. The candidate's fields are published as JSON in the lock's value;
 * `term` and `sessionId` come from the lock itself, so they cannot be forged or go stale.
 */
export interface LeaderInfo {
  /** The candidate's identity (defaults to its session id). */
  readonly id: string;
  /** Host name the leader runs on (defaults to `os.hostname()`). */
  readonly host?: string;
  /** Where to reach the leader (`host:port`, URL, ...), if the candidate published one. */
  readonly address?: string;
  /**
   * ISO-8601 wall-clock time at which the candidate started the campaign that won. For display only: wall
   * clocks of different machines disagree, so never compare it across machines to decide anything.
   */
  readonly startedAt: string;
  /**
   * The leadership term: the fence of the lock acquisition that made this leader. Strictly greater than
   * every earlier term of this election; send it with the leader's writes so stale leaders are rejected.
   */
  readonly term: number;
  /** The lock session holding leadership. */
  readonly sessionId: string;
  /** Application fields the leader published (`proclaim` adds or replaces them). */
  readonly [extra: string]: JsonValue | undefined;
}

/**
 * What a candidate publishes when it wins, or a leader in `proclaim`. Every field is optional; `term` and
 * `sessionId` are reserved (they come from the lock). Fields set to `undefined` are not published.
 */
export interface CandidateInfo {
  id?: string | undefined;
  host?: string | undefined;
  address?: string | undefined;
  startedAt?: string | undefined;
  [extra: string]: JsonValue | undefined;
}

/** Options for {@link Election.campaign}. */
export interface CampaignOptions {
  /** Published once elected; defaults: `id` = session id, `host` = `os.hostname()`, `startedAt` = now. */
  value?: CandidateInfo;
  /** Stops campaigning: the campaign rejects with an `ABORTED` error and leaves no lock behind. */
  signal?: AbortSignal;
}

/** Options for {@link Election.observe}. */
export interface ObserveOptions {
  /** Ends the iteration (it then returns normally). */
  signal?: AbortSignal;
  /** Polling interval for backends without a native watch. */
  pollIntervalMs?: number;
}

/** Options for the {@link Election} constructor. */
export interface ElectionOptions {
  /**
   * Clock for retry pauses and `startedAt`. Without it, pauses run on the provider's clock and `startedAt`
   * reads the system's wall clock: wall time is display-only, so it is never asked of the provider's clock
   * (which a backend may restrict to monotonic use).
   */
  clock?: Clock;
}

/**
 * Leadership won by {@link Election.campaign}: this participant leads while {@link Leadership.signal} is not
 * aborted.
 *
 * The signal aborts *before* anyone else can be elected, as far as the lock contract can promise it: on
 * `resign()` it aborts before the lock is released; on a lost session it aborts once the session's TTL has
 * passed since its last renewal began, while the backend frees the lock no earlier than that. Under clock
 * drift or a process pause that delays the abort itself, two participants may still act at once for a
 * moment: pass {@link Leadership.term} with every write so the receiver rejects the older term.
 */
export interface Leadership extends AsyncDisposable {
  /** The election key. */
  readonly key: string;
  /** This leadership's term (the lock's fence). Never changes, also not through `proclaim`. */
  readonly term: number;
  /** What this leader currently publishes (as observers see it once they caught up). */
  readonly value: LeaderInfo;
  /**
   * Aborts when leadership ends: with `LEASE_LOST` when it was lost (session lost, lock taken away), with
   * `LEASE_RELEASED` after `resign()`, or with `ABORTED` when `runWhileLeader` steps down.
   */
  readonly signal: AbortSignal;
  /** The underlying lease. */
  readonly lease: Lease;
  /**
   * Gives up leadership: aborts {@link Leadership.signal} first, then releases the lock so the next
   * campaigner wins within one watch round trip. Idempotent (every call returns the same promise).
   * Resolves `true` when this call released the lock, `false` when leadership had already been lost.
   * Rejects only with a transport error; the lock is then freed when the session ends or expires.
   */
  resign(): Promise<boolean>;
  /**
   * Updates the published value without an election: the fields given replace the published ones, a field
   * set to `undefined` is removed (`id` and `startedAt` keep their value instead), the term stays the same.
   * Concurrent calls apply in call order. Resolves with the new value once the backend stored it. Rejects
   * with `LEASE_LOST` (and aborts the signal) when leadership is gone, with a transport error otherwise.
   */
  proclaim(update: CandidateInfo): Promise<LeaderInfo>;
}

/** The work `runWhileLeader` runs each time it is elected. Must stop when `leadership.signal` aborts. */
export type LeaderTask = (leadership: Leadership) => Promise<void> | void;

/** Options for {@link runWhileLeader}. */
export interface RunWhileLeaderOptions {
  /** What to publish while leading (see {@link CampaignOptions.value}). */
  value?: CandidateInfo;
  /** Stop: the current task is told to stop (its leadership signal aborts), then leadership is resigned. */
  signal?: AbortSignal;
  /** Options of the sessions `runWhileLeader` opens when given a provider. */
  sessionOptions?: SessionOptions;
  /**
   * Receives errors `runWhileLeader` recovers from: a failing task (with this option set, a failing task no
   * longer ends the loop: it resigns, pauses with backoff and campaigns again) and, when running on a
   * provider, lost sessions and failures to open or end one.
   */
  onError?: (error: unknown) => void;
  /**
   * Pause before campaigning again after the task returned while still leading (jittered), and the base
   * of the backoff after a failed task. Default 1 000 ms, from 0 to 24 h.
   */
  recampaignDelayMs?: number;
  /** Clock for pauses and `startedAt`; defaults as in {@link ElectionOptions.clock}. */
  clock?: Clock;
}
