import { pickEnv } from '../config.js';
import { defineBackend } from '../registry.js';
import { MemoryLockProvider } from './provider.js';
import { type MemoryConfig, memoryConfigSchema } from './settings.js';
import { MemoryLockStore } from './store.js';

export { type MemoryConfig, memoryConfigSchema } from './settings.js';

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
      ...config,
    }),
});
