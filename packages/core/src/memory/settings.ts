import { z } from 'zod';
import { durationBounds } from '../duration-bounds.js';
import { durationMs } from '../schema-helpers.js';

/**
 * Bounds of the memory backend's session settings (constructor options, `openSession` options and
 * `BATON_SESSION_TTL` / `BATON_LOCK_DELAY`). A TTL or lock-delay longer than a day is refused: it only
 * keeps a crashed holder's keys locked for that long.
 */
export const memoryDurationBounds = {
  ttlMs: durationBounds({ min: 1 }),
  lockDelayMs: durationBounds({ min: 0 }),
} as const;

/**
 * Settings of the in-memory backend, their defaults and bounds: the one place they are declared (the
 * backend's config and {@link MemoryLockProvider}'s options both come from it).
 */
export const memoryConfigSchema = z
  .object({
    /** Default session TTL (15 s; from 1 ms to 24 h). */
    ttlMs: durationMs(memoryDurationBounds.ttlMs).default(15_000),
    /** Default lock-delay after a lost session (15 s, as Consul; from 0 to 24 h). */
    lockDelayMs: durationMs(memoryDurationBounds.lockDelayMs).default(15_000),
  })
  .strict();

/** Validated config of the in-memory backend. */
export type MemoryConfig = z.infer<typeof memoryConfigSchema>;
