import { randomUUID } from 'node:crypto';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import {
  ConfigError,
  createLockProvider,
  InvalidArgumentError,
  parseConfig,
  ResourceNotFoundError,
} from '@baton/core';
import { startDynalite } from '@baton/test-servers/dynalite';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  backend,
  DynamoLockProvider,
  dynamoConfigFields,
  dynamoConfigSchema,
  FENCE_SPAN,
} from '../src/index.js';
import { createTable, credentials, rawClient, uniqueTable, useDynalite } from './helpers.js';

const fx = useDynalite('config');

afterEach(() => {
  vi.unstubAllEnvs();
});

async function configError(env: Record<string, string>): Promise<ConfigError> {
  const error = await createLockProvider({ BATON_BACKEND: 'dynamodb', ...env }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ConfigError);
  return error as ConfigError;
}

describe('configuration', () => {
  it('AWS_REGION is required for a non-local endpoint, and the error names it', async () => {
    const error = await configError({});
    expect(error.field).toBe('AWS_REGION');
    expect(error.message).toContain('AWS_REGION');
    expect(error.message).toContain('Fix: set AWS_REGION');
  });

  it('a local endpoint needs no region', async () => {
    const provider = await createLockProvider({
      BATON_BACKEND: 'dynamodb',
      AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:1',
    });
    expect(provider.backend).toBe('dynamodb');
    await provider.close();
  });

  it.each([
    [{ BATON_SESSION_TTL: 'soon' }, 'BATON_SESSION_TTL'],
    [{ BATON_SESSION_TTL: '50ms' }, 'BATON_SESSION_TTL'],
    [{ BATON_HEARTBEAT_INTERVAL: '15s' }, 'BATON_HEARTBEAT_INTERVAL'],
    [{ BATON_DYNAMODB_TABLE: 'x' }, 'BATON_DYNAMODB_TABLE'],
    [{ BATON_DYNAMODB_PARTITION_KEY: 'owner' }, 'BATON_DYNAMODB_PARTITION_KEY'],
    [{ BATON_LOCK_DELAY: '-1s' }, 'BATON_LOCK_DELAY'],
    [{ AWS_ENDPOINT_URL_DYNAMODB: 'not a url' }, 'AWS_ENDPOINT_URL_DYNAMODB'],
    [{ BATON_DYNAMODB_FENCE_MODE: 'strict' }, 'BATON_DYNAMODB_FENCE_MODE'],
  ])('a bad %j names %s', async (env, field) => {
    const error = await configError({ AWS_REGION: 'eu-west-1', BATON_SESSION_TTL: '20s', ...env });
    expect(error.field).toBe(field);
    expect(error.message).toContain(field);
  });

  it('a bad fence mode says which modes exist and what each costs', async () => {
    const error = await configError({ AWS_REGION: 'eu-west-1', BATON_DYNAMODB_FENCE_MODE: 'strict' });
    expect(error.message).toContain('expected counter or epoch');
    expect(error.message).toContain('Fix: set BATON_DYNAMODB_FENCE_MODE to counter (the default');
    expect(error.message).toContain('never be deleted');
  });

  it('defaults: table baton_locks, partition key `key`, 20 s lease, no lock-delay, counter fences', () => {
    const config = parseConfig(dynamoConfigSchema, backend.fromEnv({ AWS_REGION: 'us-east-1' }), {
      backend: 'dynamodb',
      fields: dynamoConfigFields,
      fromEnv: true,
    });
    expect(config).toMatchObject({
      region: 'us-east-1',
      table: 'baton_locks',
      partitionKey: 'key',
      ttlMs: 20_000,
      lockDelayMs: 0,
      fenceMode: 'counter',
    });
  });

  it('environment variables reach the provider, and it works end to end against dynalite', async () => {
    vi.stubEnv('AWS_ACCESS_KEY_ID', credentials.accessKeyId);
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', credentials.secretAccessKey);
    const provider = (await createLockProvider({
      BATON_BACKEND: 'dynamodb',
      AWS_ENDPOINT_URL_DYNAMODB: fx.endpoint,
      BATON_DYNAMODB_TABLE: fx.table,
      BATON_SESSION_TTL: '1500ms',
      BATON_LOCK_DELAY: '250ms',
      BATON_DYNAMODB_FENCE_MODE: 'epoch',
    })) as DynamoLockProvider;
    fx.defer(() => provider.close());
    expect(provider).toBeInstanceOf(DynamoLockProvider);
    expect(provider.table).toBe(fx.table);
    expect(provider.fenceMode).toBe('epoch');
    const session = await provider.openSession();
    expect(session.ttlMs).toBe(1_500);
    const lease = await session.tryAcquire(`config/${randomUUID()}`);
    expect(lease?.fence).toBeGreaterThan(FENCE_SPAN); // an epoch-mode fence
  });
});

describe('the table', () => {
  it('a missing table fails with RESOURCE_NOT_FOUND that says how to create it', async () => {
    const provider = fx.provider({ table: uniqueTable('missing') });
    const error = await provider.openSession().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ResourceNotFoundError);
    expect((error as Error).message).toContain('baton dynamodb create-table');
    expect((error as Error).message).toContain('ensureTable()');
    expect((error as Error & { cause: { name: string } }).cause.name).toBe('ResourceNotFoundException');
    await expect(provider.getHolder('k')).rejects.toBeInstanceOf(ResourceNotFoundError);
  });

  it('ensureTable creates the table (on demand), waits until ACTIVE, and is idempotent', async () => {
    const slow = await startDynalite({ createTableMs: 300 });
    fx.defer(() => slow.close());
    const table = uniqueTable('ensure');
    const provider = new DynamoLockProvider({ endpoint: slow.endpoint, credentials, table, ttlMs: 1_000 });
    fx.defer(() => provider.close());
    const started = performance.now();
    expect(await provider.ensureTable()).toBe('created');
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
    const raw = rawClient(slow.endpoint);
    fx.defer(() => raw.destroy());
    const { Table } = await raw.send(new DescribeTableCommand({ TableName: table }));
    expect(Table?.TableStatus).toBe('ACTIVE');
    expect(Table?.BillingModeSummary?.BillingMode).toBe('PAY_PER_REQUEST');
    expect(Table?.KeySchema).toEqual([{ AttributeName: 'key', KeyType: 'HASH' }]);
    expect(await provider.ensureTable()).toBe('exists');
    const session = await provider.openSession();
    expect(await session.tryAcquire('after-ensure')).not.toBeNull();
  });

  it('a custom partition key name works, and a mismatching table is rejected with the fix', async () => {
    const table = uniqueTable('pk');
    await createTable(fx.raw, table, 'lockId');
    const provider = fx.provider({ table, partitionKey: 'lockId', ttlMs: 1_000 });
    expect(await provider.ensureTable()).toBe('exists');
    const session = await provider.openSession();
    expect(await session.tryAcquire('custom-pk')).not.toBeNull();

    const wrong = fx.provider({ table, ttlMs: 1_000 });
    const error = await wrong.ensureTable().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as Error).message).toContain('BATON_DYNAMODB_PARTITION_KEY');
    const session2 = await wrong.openSession().catch((e: unknown) => e);
    expect(session2).toBeInstanceOf(InvalidArgumentError);
  });
});
