import { readFile } from 'node:fs/promises';
import { type BackendContext, ConfigError, defineBackend, quotePathForMessage } from '@baton/core';
import {
  REDIS_SECRET_ENV,
  type RedisConfig,
  redisConfigFromEnv,
  redisConfigSchema,
  redisFields,
} from './config.js';
import { BACKEND } from './errors.js';
import { RedisLockProvider, type RedisLockProviderOptions } from './provider.js';

/**
 * The Redis backend definition: `createLockProvider({ BATON_BACKEND: 'redis', REDIS_URL: ... })` imports
 * this package and calls `backend.create`.
 */
export const backend = defineBackend<RedisConfig>({
  name: BACKEND,
  description: 'Redis locks as server-side scripts, expiry by the server TTL, rising fences (REDIS_URL)',
  schema: redisConfigSchema,
  fields: redisFields,
  secretEnv: REDIS_SECRET_ENV,
  fromEnv: redisConfigFromEnv,
  create: async (config, context) => new RedisLockProvider(await providerOptions(config, context)),
});

/** Turns a validated config into provider options, reading the CA file it names. */
export async function providerOptions(
  config: RedisConfig,
  context: BackendContext = {},
): Promise<RedisLockProviderOptions> {
  const { caFile, ...rest } = config;
  return {
    ...rest,
    ...(caFile ? { ca: await readCa(caFile) } : {}),
    ...(context.clock ? { clock: context.clock } : {}),
  };
}

async function readCa(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (cause) {
    const env = redisFields.caFile?.env ?? 'caFile';
    throw new ConfigError(
      env,
      `Invalid configuration for the 'redis' backend: caFile (env ${env}): cannot read ${quotePathForMessage(path)} ` +
        `(${(cause as NodeJS.ErrnoException).code ?? String(cause)}). Fix: set ${env} to ${redisFields.caFile?.hint}.`,
      { backend: BACKEND, cause },
    );
  }
}
