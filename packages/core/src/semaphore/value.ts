import { ConfigError } from '../errors.js';
import type { LockHolder } from '../lock.js';
import { quoteForMessage } from '../redact.js';

/** What a slot lock's value records: the limit it was taken under, and the holder's own text. */
interface SlotValue {
  limit: number;
  value?: string;
}

export function encodeSlotValue(limit: number, value: string | undefined): string {
  const record: SlotValue = value === undefined ? { limit } : { limit, value };
  return JSON.stringify(record);
}

/** The recorded limit and value, or `undefined` when the slot holds something that is not a permit. */
export function decodeSlotValue(text: string | undefined): SlotValue | undefined {
  if (text === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const { limit, value } = parsed as Record<string, unknown>;
    if (!Number.isSafeInteger(limit)) return undefined;
    return typeof value === 'string' ? { limit: limit as number, value } : { limit: limit as number };
  } catch {
    return undefined;
  }
}

/** Throws `CONFIG_INVALID` when a holder of `name`'s slot `slot` shows it uses another limit than `limit`. */
export function checkHolder(name: string, limit: number, slot: number, holder: LockHolder): void {
  const recorded = decodeSlotValue(holder.value)?.limit;
  if (recorded === limit && slot < limit) return;
  const seen =
    recorded === undefined
      ? `slot ${slot} is held by something that is not one of its permits`
      : slot >= limit
        ? `slot ${slot} is held, so some process uses a limit above ${limit} (that holder: ${recorded})`
        : `a holder (session ${holder.sessionId}) took its permit with limit ${recorded}`;
  throw new ConfigError(
    'limit',
    `semaphore ${quoteForMessage(name)} is used with limit ${limit} here, but ${seen}: every process ` +
      'must use the same limit for the same name (change it everywhere, or use another name)',
  );
}
