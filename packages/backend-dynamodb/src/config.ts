import {
  boolField,
  DEFAULT_MAX_DURATION_MS,
  durationBounds,
  durationMs,
  type EnvLike,
  type FieldDocs,
  intField,
  pickEnv,
} from '@baton/core';
import { z } from 'zod';
import { ATTR, FENCE_MODES, type FenceMode } from './record.js';

/** Default table name. */
export const DEFAULT_TABLE = 'baton_locks';
/** Default partition key attribute. */
export const DEFAULT_PARTITION_KEY = 'key';
/**
 * Default fence mode: one request per acquisition, and an item per key ever locked stays in the table (lock
 * items must never be deleted). `epoch` deletes released keys at 3 requests per new key.
 */
export const DEFAULT_FENCE_MODE: FenceMode = 'counter';

const reservedAttributes = new Set<string>(Object.values(ATTR));

/**
 * Bounds of the DynamoDB backend's durations, shared by the config schema and the provider's options. A
 * lease (session TTL) or lock-delay longer than a day only keeps a crashed holder's keys locked that long;
 * the heartbeat must fit twice into the lease.
 */
export const dynamoDurationBounds = {
  ttlMs: durationBounds({ min: 100 }),
  lockDelayMs: durationBounds({ min: 0 }),
  heartbeatIntervalMs: durationBounds({ min: 10, max: DEFAULT_MAX_DURATION_MS / 2 }),
  takeoverMarginMs: durationBounds({ min: 0 }),
  requestTimeoutMs: durationBounds({ min: 10, max: 600_000 }),
  /** `ensureTable({ timeoutMs })`. */
  ensureTableTimeoutMs: durationBounds({ min: 1 }),
} as const;

/** True for endpoints on this machine (dynalite, DynamoDB Local), where no AWS region is needed. */
export function isLocalEndpoint(endpoint: string | undefined): boolean {
  if (!endpoint) return false;
  try {
    const host = new URL(endpoint).hostname.replace(/^\[|\]$/g, '');
    return host === 'localhost' || host === '::1' || host === '0.0.0.0' || /^127\.\d+\.\d+\.\d+$/.test(host);
  } catch {
    return false;
  }
}

/**
 * The DynamoDB backend's settings, their defaults and bounds: the one place they are declared. The config
 * ({@link dynamoConfigSchema}) and {@link DynamoLockProvider}'s options both come from it.
 */
export const dynamoSettingsSchema = z.object({
  /** Lock table (default `baton_locks`). */
  table: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{3,255}$/, 'expected 3-255 letters, digits, _ . or -')
    .default(DEFAULT_TABLE),
  /** The table's string partition key attribute (default `key`). */
  partitionKey: z
    .string()
    .min(1)
    .max(255)
    .refine((name) => !reservedAttributes.has(name), {
      message: `must not be one of baton's item attributes (${[...reservedAttributes].join(', ')})`,
    })
    .default(DEFAULT_PARTITION_KEY),
  /** Default lease duration of sessions (default 20 s; from 100 ms to 24 h). */
  ttlMs: durationMs(dynamoDurationBounds.ttlMs).default(20_000),
  /**
   * Default lock-delay of sessions (default 0; at most 24 h): extra wait contenders add after a lease ran
   * out.
   */
  lockDelayMs: durationMs(dynamoDurationBounds.lockDelayMs).default(0),
  /**
   * Heartbeat period (default: a third of the session's lease duration; at most half of it, from 10 ms).
   * The config refuses more than half of `ttlMs`; the provider caps it there.
   */
  heartbeatIntervalMs: durationMs(dynamoDurationBounds.heartbeatIntervalMs).optional(),
  /**
   * Safety margin a contender adds to the holder's lease duration before taking a key (default: a tenth
   * of the holder's lease duration; at most 24 h).
   */
  takeoverMarginMs: durationMs(dynamoDurationBounds.takeoverMarginMs).optional(),
  /**
   * Upper bound of a single DynamoDB request (default 5 s; from 10 ms to 10 min). Each attempt is also cut
   * off when its operation's budget runs out (a heartbeat's: the time left on the lease; otherwise the
   * session TTL), so a timeout can be reported after less than this.
   */
  requestTimeoutMs: durationMs(dynamoDurationBounds.requestTimeoutMs).default(5_000),
  /** Leases renewed in parallel by one session's heartbeat (default 16, from 1 to 256). */
  heartbeatConcurrency: intField({ min: 1, max: 256 }).default(16),
  /**
   * How fences are drawn (default `counter`).
   *
   * - `counter`: every acquisition, of a new key too, is one conditional UpdateItem that adds 1 to the
   *   item's fence. Fences increase per key as long as lock items are never deleted: do not delete lock
   *   items and do not enable DynamoDB TTL on the table.
   * - `epoch`: a new item draws an epoch from a table-wide counter item once it exists, so fences keep
   *   increasing across deletion. A release deletes the item (unless someone waits in its line, or
   *   `lockAtLeastFor` keeps it on hold), and every kept item carries `expiresAt` for DynamoDB's TTL: the
   *   table holds about one item per key in use. Three requests for a new key, one of them on the counter
   *   item (a hot partition at high rates of new keys). The provider marks the table, and `counter`-mode
   *   providers refuse a marked table.
   */
  fenceMode: z
    .enum(FENCE_MODES, { message: `expected ${FENCE_MODES.join(' or ')}` })
    .default(DEFAULT_FENCE_MODE),
  /**
   * Use the table even if it is a global table (default `false`). Without it, the provider reads the table's
   * description once (dynamodb:DescribeTable) and refuses a table with replicas: regions replicate
   * last-writer-wins, so two regions could each grant the same key. Set it only if every worker sends its lock
   * requests to one region and nothing writes lock items in the others, or to skip the read.
   */
  allowGlobalTable: boolField().default(false),
});

/** Config of the DynamoDB backend (after defaults): where the table is, and the settings. */
export const dynamoConfigSchema = z
  .object({
    region: z
      .string()
      .regex(
        /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i,
        'expected an AWS region name: letters, digits and dashes, such as eu-west-1',
      )
      .optional(),
    endpoint: z.url({ message: 'expected a URL such as http://localhost:8000' }).optional(),
    ...dynamoSettingsSchema.shape,
  })
  .strict()
  .superRefine((config, ctx) => {
    if (!config.region && !isLocalEndpoint(config.endpoint)) {
      ctx.addIssue({
        code: 'custom',
        path: ['region'],
        message: 'an AWS region is required unless the endpoint is local (http://localhost:...)',
      });
    }
    if (config.heartbeatIntervalMs !== undefined && config.heartbeatIntervalMs * 2 > config.ttlMs) {
      ctx.addIssue({
        code: 'custom',
        path: ['heartbeatIntervalMs'],
        message: `must be at most half of {ttlMs} (${config.ttlMs} ms) so a lease survives one failed heartbeat`,
      });
    }
  });

/** Validated DynamoDB backend config. */
export type DynamoConfig = z.infer<typeof dynamoConfigSchema>;

/** Each field's environment variable and what a valid value looks like. */
export const dynamoConfigFields: Readonly<Record<string, FieldDocs>> = {
  region: { env: 'AWS_REGION', hint: 'an AWS region such as eu-west-1' },
  endpoint: {
    env: 'AWS_ENDPOINT_URL_DYNAMODB',
    hint: 'a URL such as http://localhost:8000 (dynalite, DynamoDB Local), or leave it unset for AWS',
    secret: 'url',
  },
  table: { env: 'BATON_DYNAMODB_TABLE', hint: `a DynamoDB table name such as ${DEFAULT_TABLE}` },
  partitionKey: {
    env: 'BATON_DYNAMODB_PARTITION_KEY',
    hint: `the table's string partition key attribute (default ${DEFAULT_PARTITION_KEY})`,
  },
  ttlMs: { env: 'BATON_SESSION_TTL', hint: 'a lease duration from 100ms to 24h such as 20s' },
  lockDelayMs: {
    env: 'BATON_LOCK_DELAY',
    hint: 'a duration up to 24h such as 5s, or 0: extra wait before taking a key whose holder stopped renewing',
  },
  heartbeatIntervalMs: {
    env: 'BATON_HEARTBEAT_INTERVAL',
    hint: 'a duration from 10ms to half of {ttlMs} (default: a third of it)',
  },
  takeoverMarginMs: {
    env: 'BATON_DYNAMODB_TAKEOVER_MARGIN',
    hint: "a duration up to 24h such as 2s (default: a tenth of the holder's lease duration)",
  },
  requestTimeoutMs: {
    env: 'BATON_DYNAMODB_REQUEST_TIMEOUT',
    hint: "a duration from 10ms to 10m such as 5s (each attempt is also cut off when the operation's budget runs out)",
  },
  heartbeatConcurrency: { env: 'BATON_DYNAMODB_HEARTBEAT_CONCURRENCY', hint: 'a whole number from 1 to 256' },
  fenceMode: {
    env: 'BATON_DYNAMODB_FENCE_MODE',
    hint:
      'counter (the default: one request per acquisition; an item per key ever locked stays, lock items must ' +
      'never be deleted, no TTL on the table) or epoch (released keys are deleted and kept items carry a TTL ' +
      'attribute, expiresAt; a new key costs 3 requests, one on a shared counter item; counter-mode providers ' +
      'then refuse the table)',
  },
  allowGlobalTable: {
    env: 'BATON_DYNAMODB_ALLOW_GLOBAL_TABLE',
    hint:
      'true or false (default false: a table with replicas in other regions is refused, since regions replicate ' +
      'last-writer-wins and could each grant one key)',
  },
};

/**
 * Secrets the AWS SDK reads from the environment by itself (its default credential chain): never part of
 * the config, but remembered so that no message shows them (see `redact()` in @baton/core).
 */
export const DYNAMO_SECRET_ENV: readonly string[] = ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'];

/** Reads the backend's settings from environment variables (values stay strings; the schema coerces). */
export function dynamoConfigFromEnv(env: EnvLike): Record<string, unknown> {
  return pickEnv(env, {
    AWS_DEFAULT_REGION: 'region',
    AWS_REGION: 'region',
    AWS_ENDPOINT_URL: 'endpoint',
    AWS_ENDPOINT_URL_DYNAMODB: 'endpoint',
    BATON_DYNAMODB_TABLE: 'table',
    BATON_DYNAMODB_PARTITION_KEY: 'partitionKey',
    BATON_SESSION_TTL: 'ttlMs',
    BATON_LOCK_DELAY: 'lockDelayMs',
    BATON_HEARTBEAT_INTERVAL: 'heartbeatIntervalMs',
    BATON_DYNAMODB_TAKEOVER_MARGIN: 'takeoverMarginMs',
    BATON_DYNAMODB_REQUEST_TIMEOUT: 'requestTimeoutMs',
    BATON_DYNAMODB_HEARTBEAT_CONCURRENCY: 'heartbeatConcurrency',
    BATON_DYNAMODB_FENCE_MODE: 'fenceMode',
    BATON_DYNAMODB_ALLOW_GLOBAL_TABLE: 'allowGlobalTable',
  });
}
