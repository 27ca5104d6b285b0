import { randomUUID } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createLockProvider, isBatonError } from '@baton/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { countRequests, credentials, useDynalite } from './helpers.js';

// Issue 15: a DynamoDB global table replicates between regions last-writer-wins, so two regions can each
// grant one key. dynalite has no global tables: an SDK middleware adds the `Replicas` that DescribeTable
// returns for one (the field AWS documents for version 2019.11.21 global tables); everything else is dynalite.
const fx = useDynalite('global');
afterEach(() => {
  vi.unstubAllEnvs();
});

function replicated(client: DynamoDBClient, regions: string[]): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      if (context.commandName === 'DescribeTableCommand') {
        const output = result.output as { Table?: { Replicas?: Array<{ RegionName: string }> } };
        if (output.Table) output.Table.Replicas = regions.map((RegionName) => ({ RegionName }));
      }
      return result;
    },
    { step: 'initialize', name: `batonFakeReplicas-${randomUUID()}` },
  );
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('a global table (replicas in other regions)', () => {
  it('is refused when the first session opens, naming the setting; nothing is written', async () => {
    const provider = fx.provider();
    replicated(provider.client, ['eu-west-1', 'us-east-1']);
    const requests = countRequests(provider.client);
    const error = await failure(provider.openSession());
    expect(isBatonError(error) && error.code).toBe('CONFIG_INVALID');
    expect((error as { field: string }).field).toBe('BATON_DYNAMODB_ALLOW_GLOBAL_TABLE (allowGlobalTable)');
    expect(String(error)).toMatch(/global table \(replicas in eu-west-1, us-east-1\)/);
    expect(String(error)).toMatch(/last-writer-wins/);
    expect([...requests.counts.keys()]).toEqual(['DescribeTable']);
    // Still refused on the next try: a failed check is not remembered as passed.
    expect(isBatonError(await failure(provider.openSession()))).toBe(true);
  });

  it('is used when allowGlobalTable is set, without reading the description', async () => {
    const provider = fx.provider({ allowGlobalTable: true });
    replicated(provider.client, ['eu-west-1']);
    const requests = countRequests(provider.client);
    const session = await provider.openSession();
    const lease = await session.tryAcquire(`global/${randomUUID()}`);
    expect(lease).not.toBeNull();
    expect(requests.counts.get('DescribeTable')).toBeUndefined();
    await session.destroy();
  });

  it('a table without replicas costs one DescribeTable per provider, not per session', async () => {
    const provider = fx.provider();
    const requests = countRequests(provider.client);
    const sessions = await Promise.all([provider.openSession(), provider.openSession()]);
    await provider.openSession();
    expect(requests.counts.get('DescribeTable')).toBe(1);
    await Promise.all(sessions.map((s) => s.destroy()));
  });

  it('DescribeTable denied: PERMISSION_DENIED naming the action and the setting that skips the check', async () => {
    const proxy = await fx.proxy();
    proxy.inject('access-denied', { operation: 'DescribeTable' });
    const provider = fx.provider({ endpoint: proxy.endpoint });
    const error = await failure(provider.openSession());
    expect(isBatonError(error) && error.code).toBe('PERMISSION_DENIED');
    expect(String(error)).toMatch(
      /allow dynamodb:DescribeTable on the table, or set BATON_DYNAMODB_ALLOW_GLOBAL_TABLE/,
    );
    expect(proxy.forwarded).not.toContain('UpdateItem');
  });

  it('BATON_DYNAMODB_ALLOW_GLOBAL_TABLE is read from the environment and validated', async () => {
    // The SDK reads credentials from process.env itself.
    vi.stubEnv('AWS_ACCESS_KEY_ID', credentials.accessKeyId);
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', credentials.secretAccessKey);
    const env = {
      BATON_BACKEND: 'dynamodb',
      AWS_ENDPOINT_URL_DYNAMODB: fx.endpoint,
      BATON_DYNAMODB_TABLE: fx.table,
    };
    const bad = await failure(createLockProvider({ ...env, BATON_DYNAMODB_ALLOW_GLOBAL_TABLE: 'maybe' }));
    expect(String(bad)).toMatch(/BATON_DYNAMODB_ALLOW_GLOBAL_TABLE/);
    const provider = await createLockProvider({ ...env, BATON_DYNAMODB_ALLOW_GLOBAL_TABLE: 'true' });
    fx.defer(() => provider.close());
    const requests = countRequests((provider as unknown as { client: DynamoDBClient }).client);
    const session = await provider.openSession();
    expect(requests.counts.get('DescribeTable')).toBeUndefined();
    await session.destroy();
  });
});
