import type { LockHolder } from '../lock.js';
import type { PermitHolder } from './types.js';
import { decodeSlotValue } from './value.js';

/** One semaphore as a listing of held locks shows it, for operator tools (the console, `baton locks`). */
export interface SemaphoreCensus {
  /** The semaphore's name: its slot keys are `<name>/slot/<i>`. */
  readonly name: string;
  /**
   * The limits its permits were taken under, ascending. One entry when every process agrees; more than one
   * means processes use different limits for the same name (they refuse with `CONFIG_INVALID` once they see
   * it, but the permits already taken stay valid until released).
   */
  readonly limits: readonly number[];
  /** Held permits, in slot order. */
  readonly permits: readonly PermitHolder[];
  /**
   * The head of the semaphore's waiting line (the holder of `<name>/line`): somebody waits for a permit when
   * this is set. The rest of the line waits behind that key on the lock backend.
   */
  readonly lineHead: LockHolder | null;
}

const SLOT_KEY = /^(.+)\/slot\/(0|[1-9][0-9]*)$/;
const LINE_KEY = /^(.+)\/line$/;

/**
 * Finds the semaphores among `holders` (typically one `LockProvider.list()`): a held lock is a permit when
 * its key is `<name>/slot/<i>` and its value records a limit, as every permit's does. Locks that only look
 * like slots (no recorded limit) are left out, and so is a `<name>/line` lock without any held permit of
 * `<name>` (a waiting line is held only while every permit is taken, so such a lock is not a semaphore's).
 */
export function semaphoresIn(holders: readonly LockHolder[]): SemaphoreCensus[] {
  const permits = new Map<string, PermitHolder[]>();
  const lines = new Map<string, LockHolder>();
  for (const holder of holders) {
    const slot = SLOT_KEY.exec(holder.key);
    if (slot) {
      const recorded = decodeSlotValue(holder.value);
      if (recorded === undefined) continue;
      const name = slot[1]!;
      const list = permits.get(name) ?? [];
      list.push({
        slot: Number(slot[2]),
        key: holder.key,
        sessionId: holder.sessionId,
        fence: holder.fence,
        limit: recorded.limit,
        value: recorded.value,
      });
      permits.set(name, list);
      continue;
    }
    const line = LINE_KEY.exec(holder.key);
    if (line) lines.set(line[1]!, holder);
  }
  return [...permits.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, held]) => ({
      name,
      limits: [...new Set(held.map((permit) => permit.limit as number))].sort((a, b) => a - b),
      permits: held.sort((a, b) => a.slot - b.slot),
      lineHead: lines.get(name) ?? null,
    }));
}
