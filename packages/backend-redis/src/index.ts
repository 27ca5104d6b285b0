export { backend, providerOptions } from './backend.js';
export {
  type RedisConfig,
  type RedisEndpoint,
  redisConfigFromEnv,
  redisConfigSchema,
  redisDurationBounds,
  redisFields,
} from './config.js';
export { ACL_COMMANDS, aclHint, BACKEND } from './errors.js';
export { RedisKeys } from './keys.js';
export { RedisLockProvider, type RedisLockProviderOptions } from './provider.js';
export { type RedisLeaseState, RedisSession } from './session.js';
