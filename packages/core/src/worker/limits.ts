import { InvalidArgumentError } from '../errors.js';
import type { LockProvider, LockSession } from '../lock.js';
import { MAX_SEMAPHORE_LIMIT, semaphore } from '../semaphore/semaphore.js';
import type { Permit, Semaphore } from '../semaphore/types.js';
import type { WorkerEnv } from './env.js';

/** Name of the semaphore that limits tasks of `kind` (`limit/<kind>`): the same in every worker. */
export function limitSemaphoreName(kind: string): string {
  return `limit/${kind}`;
}

/** One semaphore per limited kind; throws `INVALID_ARGUMENT` naming `limits.<kind>`. */
export function limitSemaphores(
  locks: LockProvider,
  limits: Readonly<Record<string, number>> | undefined,
): ReadonlyMap<string, Semaphore> {
  const semaphores = new Map<string, Semaphore>();
  if (limits === undefined) return semaphores;
  if (typeof limits !== 'object' || limits === null || Array.isArray(limits)) {
    throw new InvalidArgumentError(
      'Worker: limits must be an object of task kind to limit, e.g. { mail: 3 }',
    );
  }
  for (const [kind, limit] of Object.entries(limits)) {
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_SEMAPHORE_LIMIT) {
      throw new InvalidArgumentError(
        `Worker: limits.${kind} must be a whole number from 1 to ${MAX_SEMAPHORE_LIMIT}, got ${String(limit)}`,
      );
    }
    try {
      semaphores.set(kind, semaphore(locks, limitSemaphoreName(kind), { limit }));
    } catch (error) {
      throw new InvalidArgumentError(`Worker: limits.${kind}: the kind cannot name a lock key`, {
        cause: error,
      });
    }
  }
  return semaphores;
}

/**
 * The per-kind limits of one worker. A kind found full is skipped without a round trip for the rest of the
 * pass (bucket mode: until the next schedule tick), or until this worker gives a permit of that kind back.
 */
export class KindLimits {
  readonly #semaphores: ReadonlyMap<string, Semaphore>;
  readonly #full = new Set<string>();
  /** Kind of each semaphore name. */
  readonly #kinds = new Map<string, string>();

  constructor(semaphores: ReadonlyMap<string, Semaphore>) {
    this.#semaphores = semaphores;
    for (const [kind, sem] of semaphores) this.#kinds.set(sem.name, kind);
  }

  /** Whether `kind` has a limit. */
  limits(kind: string): boolean {
    return this.#semaphores.has(kind);
  }

  /** Whether `kind` was found full earlier in this pass (and no permit of it came back since). */
  knownFull(kind: string): boolean {
    return this.#full.has(kind);
  }

  /** The kinds found full (bucket mode's claims leave their tasks alone). */
  fullKinds(): string[] {
    return [...this.#full];
  }

  /** A new pass (bucket mode: a schedule tick) looks again. */
  newPass(): void {
    this.#full.clear();
  }

  /**
   * A permit of `kind`, `null` when all are held (rejects on transport errors and limit mismatches). A kind
   * found full, or whose semaphore failed, counts as full until the next pass.
   */
  async take(session: LockSession, kind: string): Promise<Permit | null> {
    const sem = this.#semaphores.get(kind);
    if (!sem) throw new Error(`no limit for kind ${kind}`);
    let permit: Permit | null;
    try {
      permit = await sem.tryAcquire(session);
    } catch (error) {
      this.#full.add(kind);
      throw error;
    }
    if (permit) return permit;
    this.#full.add(kind);
    return null;
  }

  /** Gives a permit back; its kind may have room again. True when the kind had been found full. */
  async give(permit: Permit): Promise<boolean> {
    const kind = this.#kinds.get(permit.name) ?? '';
    const wasFull = this.#full.has(kind);
    try {
      await permit.release();
    } finally {
      this.#full.delete(kind);
    }
    return wasFull;
  }
}

/**
 * Gives a task's permit back (its kind may have room again); a transport error is reported, not thrown.
 * True when the kind had been found full, so tasks of it were skipped and may run now.
 */
export async function givePermit(env: WorkerEnv, permit: Permit, taskId: string): Promise<boolean> {
  try {
    return await env.limits.give(permit);
  } catch (error) {
    env.observe({ type: 'error', error, phase: 'release', taskId });
    return true;
  }
}
