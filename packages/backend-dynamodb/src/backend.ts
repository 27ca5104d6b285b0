import { defineBackend } from '@baton/core';
import {
  DYNAMO_SECRET_ENV,
  type DynamoConfig,
  dynamoConfigFields,
  dynamoConfigFromEnv,
  dynamoConfigSchema,
} from './config.js';
import { DynamoLockProvider } from './provider.js';

/**
 * The DynamoDB backend definition: `createLockProvider()` loads it for `BATON_BACKEND=dynamodb`.
 * Credentials come from the AWS SDK's default provider chain (environment, profile, IAM role).
 */
export const backend = defineBackend<DynamoConfig>({
  name: 'dynamodb',
  description:
    'DynamoDB leases (one item per key, heartbeats, takeover judged on the local monotonic clock only)',
  schema: dynamoConfigSchema,
  fields: dynamoConfigFields,
  secretEnv: DYNAMO_SECRET_ENV,
  fromEnv: dynamoConfigFromEnv,
  create: (config, context) => new DynamoLockProvider({ ...config, clock: context.clock }),
});
