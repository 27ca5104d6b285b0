export { backend } from './backend.js';
export {
  DEFAULT_FENCE_MODE,
  DEFAULT_PARTITION_KEY,
  DEFAULT_TABLE,
  type DynamoConfig,
  dynamoConfigFields,
  dynamoConfigFromEnv,
  dynamoConfigSchema,
  dynamoDurationBounds,
  isLocalEndpoint,
} from './config.js';
export type { EnsureTableResult } from './ensure-table.js';
export { DynamoLockProvider, type DynamoLockProviderOptions } from './provider.js';
export {
  ATTR as LOCK_ITEM_ATTRIBUTES,
  EPOCH_ITEM_KEY,
  EXPIRY_SLACK_S,
  FENCE_MODES,
  FENCE_SPAN,
  type FenceMode,
  LOCK_PREFIX,
} from './record.js';
export { type DynamoLeaseState, DynamoLockSession } from './session.js';
