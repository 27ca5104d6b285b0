import type { Leadership } from '@baton/core';
import { check } from '../lock-suite/context.js';

/** One participant's belief that it leads, on this process's monotonic clock. */
export interface BeliefInterval {
  participant: string;
  term: number;
  start: number;
  end: number | undefined;
}

/**
 * Records who *believes* it leads (its leadership signal is not aborted), on one clock. A participant that
 * is elected while another still believes, or with a term not above every earlier one, is a violation.
 * A crashed participant stops believing at the crash: a dead process acts on nothing.
 */
export class BeliefTracker {
  readonly intervals: BeliefInterval[] = [];
  readonly violations: string[] = [];
  readonly #believing = new Map<string, { leadership: Leadership; interval: BeliefInterval }>();

  elected(participant: string, leadership: Leadership): void {
    const now = performance.now();
    const others = [...this.#believing.keys()].filter((p) => p !== participant);
    if (others.length > 0) {
      this.violations.push(
        `${participant} elected (term ${leadership.term}) while ${others.join(', ')} still believed it led`,
      );
    }
    const previous = this.intervals.at(-1);
    if (previous && leadership.term <= previous.term) {
      this.violations.push(
        `term ${leadership.term} of ${participant} is not above earlier term ${previous.term}`,
      );
    }
    const interval: BeliefInterval = { participant, term: leadership.term, start: now, end: undefined };
    this.intervals.push(interval);
    const entry = { leadership, interval };
    this.#believing.set(participant, entry);
    const end = () => this.#end(participant, entry);
    if (leadership.signal.aborted) end();
    else leadership.signal.addEventListener('abort', end, { once: true });
  }

  crashed(participant: string): void {
    const entry = this.#believing.get(participant);
    if (entry) this.#end(participant, entry);
  }

  /** Participants that believe they lead right now. */
  believers(): string[] {
    return [...this.#believing.keys()];
  }

  /** Fails on any recorded violation or overlapping interval. */
  assertOneAtATime(): void {
    check(this.violations.length === 0, this.violations.join('; '));
    const sorted = [...this.intervals].sort((a, b) => a.start - b.start);
    for (let i = 1; i < sorted.length; i++) {
      const before = sorted[i - 1]!;
      const after = sorted[i]!;
      check(
        before.end !== undefined && before.end <= after.start,
        `leadership of ${before.participant} (term ${before.term}) overlaps ${after.participant} (term ${after.term})`,
      );
    }
  }

  #end(participant: string, entry: { leadership: Leadership; interval: BeliefInterval }): void {
    if (this.#believing.get(participant) !== entry) return;
    entry.interval.end = performance.now();
    this.#believing.delete(participant);
  }
}
