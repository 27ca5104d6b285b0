import { type AcquireScope, acquireScope, refusedPause } from '../acquire.js';
import { InvalidArgumentError } from '../errors.js';
import type { LockHolder, LockProvider, LockSession } from '../lock.js';
import { validateKey } from '../session-base.js';
import { permitOf } from './permit.js';
import type {
  AcquirePermitOptions,
  Permit,
  PermitHolder,
  PermitOptions,
  Semaphore,
  SemaphoreOptions,
} from './types.js';
import { checkHolder, decodeSlotValue, encodeSlotValue } from './value.js';
import { waitForAnySlot } from './wait.js';

/** Largest {@link SemaphoreOptions.limit}: each permit is one slot key. */
export const MAX_SEMAPHORE_LIMIT = 1024;

/**
 * A counting semaphore named `name` with `options.limit` permits, built only on the {@link LockProvider}
 * contract, so it works unchanged on every backend. Permit *i* is the lock of key `<name>/slot/<i>`, so a
 * permit carries its slot's fence, renews with its session and is freed by the backend's expiry when its
 * holder crashes. Each permit records the limit it was taken under; a process that sees a holder with
 * another limit refuses with `CONFIG_INVALID`.
 *
 * ```ts
 * const partnerApi = semaphore(provider, 'limit/call-partner-api', { limit: 3 });
 * await using permit = await partnerApi.acquire(session, { signal });
 * await callPartner({ signal: permit.signal, fence: [permit.key, permit.fence] });
 * ```
 */
export function semaphore(provider: LockProvider, name: string, options: SemaphoreOptions): Semaphore {
  return new LockSemaphore(provider, name, options);
}

const SLOT = /\/slot\/(0|[1-9][0-9]*)$/;

class LockSemaphore implements Semaphore {
  readonly provider: LockProvider;
  readonly name: string;
  readonly limit: number;

  constructor(provider: LockProvider, name: string, options: SemaphoreOptions) {
    if (typeof provider?.openSession !== 'function') {
      throw new InvalidArgumentError(
        'semaphore: `provider` must be a LockProvider (see createLockProvider())',
      );
    }
    const limit = options?.limit;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_SEMAPHORE_LIMIT) {
      throw new InvalidArgumentError(
        `semaphore: limit must be a whole number from 1 to ${MAX_SEMAPHORE_LIMIT}, got ${String(limit)}`,
      );
    }
    validateKey(name);
    validateKey(slotKey(name, limit - 1));
    validateKey(semaphoreLineKey(name));
    this.provider = provider;
    this.name = name;
    this.limit = limit;
  }

  async tryAcquire(session: LockSession, options: PermitOptions = {}): Promise<Permit | null> {
    const value = encodeSlotValue(this.limit, options.value);
    const mine = new Set(session.leases().map((lease) => lease.key));
    const start = Math.floor(Math.random() * this.limit);
    for (let i = 0; i < this.limit; i++) {
      const slot = (start + i) % this.limit;
      const key = slotKey(this.name, slot);
      if (mine.has(key)) continue;
      const lease = await session.tryAcquire(key, { value });
      if (lease) return permitOf(this.name, this.limit, slot, lease, options.value);
    }
    await this.#census();
    return null;
  }

  async acquire(session: LockSession, options: AcquirePermitOptions = {}): Promise<Permit> {
    const { signal: _signal, timeoutMs: _timeoutMs, ...permitOptions } = options;
    const scope = acquireScope(this.name, options, {
      clock: this.provider.clock,
      sessionSignal: session.signal,
    });
    try {
      // Without a fair line served on a watch, handing the head's role along the line costs more than the
      // order is worth (a polled line passes it one poll interval late): every waiter tries the slots itself.
      if (!semaphoreQueues(this.provider)) {
        return await this.#kept(await this.#headWait(session, permitOptions, scope), scope);
      }
      // Nobody in line: a free slot is taken at once. Otherwise newcomers line up behind the waiters.
      if ((await this.provider.getHolder(semaphoreLineKey(this.name), { times: false })) === null) {
        const permit = await this.tryAcquire(session, permitOptions);
        if (permit) return await this.#kept(permit, scope);
      }
      scope.throwIfEnded();
      const turn = await session.acquire(semaphoreLineKey(this.name), { signal: scope.signal });
      try {
        return await this.#kept(await this.#headWait(session, permitOptions, scope), scope);
      } finally {
        await turn.release().catch(() => undefined);
      }
    } catch (error) {
      scope.throwIfEnded();
      throw scope.mapError(error);
    } finally {
      scope.close();
    }
  }

  /** The head of the line: tries the slots, waiting on their changes, until it gets one. */
  async #headWait(session: LockSession, permitOptions: PermitOptions, scope: AcquireScope): Promise<Permit> {
    const keys = Array.from({ length: this.limit }, (_, slot) => slotKey(this.name, slot));
    let refusals = 0;
    for (let attempt = 0; ; attempt++) {
      scope.throwIfEnded();
      const permit = await this.tryAcquire(session, permitOptions);
      if (permit) return permit;
      scope.throwIfEnded();
      const sawFree = await waitForAnySlot(this.provider, keys, scope.signal, attempt, session.ttlMs);
      if (sawFree) await refusedPause(refusals++, session.ttlMs, scope.signal, this.provider.clock);
      else refusals = 0;
    }
  }

  /** Returns `permit`, unless the wait ended meanwhile: then gives it back and throws why. */
  async #kept(permit: Permit, scope: AcquireScope): Promise<Permit> {
    if (scope.signal.aborted) {
      await permit.release().catch(() => undefined);
      scope.throwIfEnded();
    }
    return permit;
  }

  async holders(options: { signal?: AbortSignal } = {}): Promise<PermitHolder[]> {
    return (await this.#slotHolders(options.signal)).map((holder) => {
      const decoded = decodeSlotValue(holder.value);
      return {
        slot: holder.slot,
        key: holder.key,
        sessionId: holder.sessionId,
        fence: holder.fence,
        limit: decoded?.limit,
        value: decoded ? decoded.value : holder.value,
      };
    });
  }

  /**
   * Every slot is taken: the moment to look at who holds them (and at the first slot beyond the limit, which
   * a process with a larger limit may hold), and refuse a mismatched limit. Consistent reads of single keys,
   * in parallel: `list()` may scan a whole table on some backends.
   */
  async #census(): Promise<void> {
    const holders = await Promise.all(
      Array.from({ length: this.limit + 1 }, (_, slot) =>
        this.provider.getHolder(slotKey(this.name, slot), { times: false }),
      ),
    );
    holders.forEach((holder, slot) => {
      if (holder) checkHolder(this.name, this.limit, slot, holder);
    });
  }

  /** Held slots: one `list()` where the backend has it (which also shows slots beyond this limit). */
  async #slotHolders(signal?: AbortSignal): Promise<Array<LockHolder & { slot: number }>> {
    const prefix = `${this.name}/slot/`;
    let held: LockHolder[];
    if (this.provider.capabilities.list && this.provider.list) {
      held = await this.provider.list(prefix);
    } else {
      const all = await Promise.all(
        Array.from({ length: this.limit }, (_, slot) =>
          this.provider.getHolder(slotKey(this.name, slot), signal ? { signal } : {}),
        ),
      );
      held = all.filter((holder): holder is LockHolder => holder !== null);
    }
    const slots: Array<LockHolder & { slot: number }> = [];
    for (const holder of held) {
      if (!holder.key.startsWith(prefix)) continue;
      const match = SLOT.exec(holder.key);
      if (!match || holder.key.length !== prefix.length + match[1]!.length) continue;
      slots.push({ ...holder, slot: Number(match[1]) });
    }
    return slots.sort((a, b) => a.slot - b.slot);
  }
}

/**
 * The lock key of a semaphore's waiting line. Its holder is the head of the line (the one waiter that watches
 * the slots); where {@link semaphoreQueues} holds, blocking `acquire` calls queue on it and waiters get permits
 * in the order they started waiting.
 */
export function semaphoreLineKey(name: string): string {
  return `${name}/line`;
}

/**
 * Whether blocking `acquire` calls line up on {@link semaphoreLineKey} (waiters served in arrival order): on
 * backends with a fair line (`fairQueue`) that wakes the next waiter on the backend's watch (`nativeWatch`).
 */
export function semaphoreQueues(provider: LockProvider): boolean {
  return provider.capabilities.fairQueue && provider.capabilities.nativeWatch;
}

/** The lock key of a semaphore's slot. */
export function slotKey(name: string, slot: number): string {
  return `${name}/slot/${slot}`;
}
