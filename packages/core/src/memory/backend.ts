import { z } from 'zod';
import { pickEnv } from '../config.js';
import { defineBackend } from '../registry.js';
import { durationMs } from '../schema-helpers.js';
import { MemoryLockProvider, memoryDurationBounds } from './provider.js';
import { MemoryLockStore } from './store.js';

/** Config of the in-memory backend. */
export const memoryConfigSchema = z
  .object({
    ttlMs: durationMs(memoryDurationBounds.ttlMs).default(15_000),
    lockDelayMs: durationMs(memoryDurationBounds.lockDelayMs).default(15_000),
  })
  .strict();

export type MemoryConfig = z.infer<typeof memoryConfigSchema>;

let processStore: MemoryLockStore | undefined;

/** The store shared by every memory provider created through configuration in this process. */
export function processMemoryStore(): MemoryLockStore {
  processStore ??= new MemoryLockStore();
  return processStore;
}

/** The in-memory backend: one process, no server. For tests, the embedded demo and single-host jobs. */
export const memoryBackend = defineBackend<MemoryConfig>({
  name: 'memory',
  description: 'in-process locks (one process only): tests, demos, single-host jobs',
  schema: memoryConfigSchema,
  fields: {
    ttlMs: { env: 'BATON_SESSION_TTL', hint: 'a duration such as 15s' },
    lockDelayMs: { env: 'BATON_LOCK_DELAY', hint: 'a duration such as 15s, or 0 to disable' },
  },
  fromEnv: (env) => pickEnv(env, { BATON_SESSION_TTL: 'ttlMs', BATON_LOCK_DELAY: 'lockDelayMs' }),
  create: (config, context) =>
    new MemoryLockProvider({
      store: context.clock ? new MemoryLockStore({ clock: context.clock }) : processMemoryStore(),
      ttlMs: config.ttlMs,
      lockDelayMs: config.lockDelayMs,
    }),
});
