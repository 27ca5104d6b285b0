import type { Permit } from '@baton/core';
import { check } from '../lock-suite/context.js';

/**
 * Records which permits their holders may act on (granted, signal not aborted, not released, holder not
 * crashed), on one clock. A grant while `limit` permits are already valid is a violation, and so is a fence
 * that does not rise above every earlier fence of the same slot.
 */
export class PermitTracker {
  readonly violations: string[] = [];
  readonly #valid = new Set<Permit>();
  readonly #fences = new Map<string, number>();
  readonly #limit: number;
  grants = 0;
  maxValid = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  granted(holder: string, permit: Permit): void {
    this.grants++;
    if (permit.signal.aborted) return;
    if (this.#valid.size >= this.#limit) {
      this.violations.push(
        `${holder} got a permit (slot ${permit.slot}, fence ${permit.fence}) while ${this.#valid.size} ` +
          `of limit ${this.#limit} were valid`,
      );
    }
    const previous = this.#fences.get(permit.key);
    if (previous !== undefined && permit.fence <= previous) {
      this.violations.push(`fence ${permit.fence} of ${permit.key} is not above earlier fence ${previous}`);
    }
    this.#fences.set(permit.key, Math.max(previous ?? 0, permit.fence));
    this.#valid.add(permit);
    this.maxValid = Math.max(this.maxValid, this.#valid.size);
    permit.signal.addEventListener('abort', () => this.#valid.delete(permit), { once: true });
  }

  /** The holder stops acting on `permit` (it is about to release it, or it crashed). */
  ended(permit: Permit): void {
    this.#valid.delete(permit);
  }

  assertClean(): void {
    check(this.violations.length === 0, this.violations.join('; '));
  }
}
