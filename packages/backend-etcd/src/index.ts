export { backend, providerOptions } from './backend.js';
export {
  ETCD_MIN_TTL_MS,
  type EtcdConfig,
  etcdConfigFromEnv,
  etcdConfigSchema,
  etcdDurationBounds,
  etcdFields,
} from './config.js';
export { BACKEND, roleHint } from './errors.js';
export { EtcdKeys } from './keys.js';
export { EtcdLockProvider, type EtcdLockProviderOptions, type EtcdTlsOptions } from './provider.js';
export { type EtcdLeaseState, EtcdSession } from './session.js';
export { holderOf } from './watch.js';
