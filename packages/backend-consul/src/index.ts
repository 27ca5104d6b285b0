export { backend, providerOptions } from './backend.js';
export {
  CONSUL_MAX_LOCK_DELAY_MS,
  CONSUL_MAX_TTL_MS,
  CONSUL_MIN_TTL_MS,
  type ConsulConfig,
  consulConfigFromEnv,
  consulConfigSchema,
  consulDurationBounds,
  consulFields,
} from './config.js';
export { fenceOf, holderOf } from './entry.js';
export { aclHint } from './errors.js';
export type { KvEntry } from './http.js';
export { KeyCodec } from './keys.js';
export { LINE_SEGMENT } from './line.js';
export { ConsulLockProvider, type ConsulLockProviderOptions, type ConsulTlsOptions } from './provider.js';
export { type ConsulLeaseState, ConsulSession } from './session.js';
