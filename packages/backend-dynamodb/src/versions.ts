import { randomUUID } from 'node:crypto';

/** DynamoDB allows up to 100 operands in `IN`; stay well below. */
const MAX_VERSIONS = 32;

/** One conditional write of a held lease. */
export interface VersionedWrite {
  /** The record version this write sets. */
  readonly rvn: string;
  /** Versions the item may carry for the write to apply (it includes `rvn`, so a retry is idempotent). */
  readonly condition: readonly string[];
}

/**
 * The record versions a holder wrote for one lease and that may still be the item's current version.
 *
 * A write that failed on the client (timeout, reset) may still have been applied by DynamoDB, so its version
 * stays here until a later write is confirmed. Every write is conditional on the item carrying one of these
 * versions, which makes "it failed for me but succeeded on the server" harmless: the next heartbeat, publish
 * or release still matches, without an extra read.
 */
export class RecordVersions {
  #known: string[];

  constructor(current: string) {
    this.#known = [current];
  }

  /** Starts a write: a fresh version, conditional on every version that may be current. */
  begin(): VersionedWrite {
    const rvn = randomUUID();
    this.#known.push(rvn);
    if (this.#known.length > MAX_VERSIONS) this.#known.shift();
    return { rvn, condition: [...this.#known] };
  }

  /**
   * `write` was applied: every version its condition listed is superseded for good (only versions begun
   * later, by writes still in flight, stay possible).
   */
  confirm(write: VersionedWrite): void {
    const superseded = new Set(write.condition);
    superseded.delete(write.rvn);
    this.#known = this.#known.filter((v) => !superseded.has(v));
  }

  has(rvn: string): boolean {
    return this.#known.includes(rvn);
  }
}
