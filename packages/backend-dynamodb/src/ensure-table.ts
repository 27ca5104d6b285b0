import {
  CreateTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  type TableDescription,
} from '@aws-sdk/client-dynamodb';
import { type Clock, InvalidArgumentError, sleep, TimeoutError } from '@baton/core';
import { BACKEND } from './errors.js';
import type { Requester } from './requester.js';

/** Options for {@link ensureLockTable}. */
export interface EnsureTableOptions {
  client: DynamoDBClient;
  requester: Requester;
  clock: Clock;
  table: string;
  partitionKey: string;
  /** Give up waiting for the table to become ACTIVE after this long (default 5 minutes). */
  timeoutMs?: number;
}

/** What {@link ensureLockTable} did. */
export type EnsureTableResult = 'created' | 'exists';

/**
 * Creates the lock table (on-demand billing, one string partition key) unless it exists, then waits until
 * it is ACTIVE. An existing table must have exactly that key schema. Needs dynamodb:DescribeTable and, to
 * create, dynamodb:CreateTable.
 */
export async function ensureLockTable(options: EnsureTableOptions): Promise<EnsureTableResult> {
  const { client, requester, clock, table, partitionKey } = options;
  const deadline = clock.monotonicNow() + (options.timeoutMs ?? 300_000);
  let result: EnsureTableResult = 'exists';
  let description = await describe(options);
  if (!description) {
    try {
      await requester.run('CreateTable', (abortSignal) =>
        client.send(
          new CreateTableCommand({
            TableName: table,
            BillingMode: 'PAY_PER_REQUEST',
            AttributeDefinitions: [{ AttributeName: partitionKey, AttributeType: 'S' }],
            KeySchema: [{ AttributeName: partitionKey, KeyType: 'HASH' }],
          }),
          { abortSignal },
        ),
      );
      result = 'created';
    } catch (error) {
      // Someone else is creating it right now: wait for it like for our own.
      if (sdkErrorName(error) !== 'ResourceInUseException') throw error;
    }
    description = await describe(options);
  }
  for (let attempt = 0; description?.TableStatus !== 'ACTIVE'; attempt++) {
    if (clock.monotonicNow() >= deadline) {
      throw new TimeoutError(
        `DynamoDB table '${table}' is still ${description?.TableStatus ?? 'missing'} after ${options.timeoutMs ?? 300_000} ms`,
        { backend: BACKEND },
      );
    }
    await sleep(Math.min(2_000, 100 * 2 ** Math.min(attempt, 5)), { clock });
    description = await describe(options);
  }
  checkKeySchema(description, table, partitionKey);
  return result;
}

async function describe(options: EnsureTableOptions): Promise<TableDescription | undefined> {
  try {
    const output = await options.requester.run('DescribeTable', (abortSignal) =>
      options.client.send(new DescribeTableCommand({ TableName: options.table }), { abortSignal }),
    );
    return output.Table;
  } catch (error) {
    if (sdkErrorName(error) === 'ResourceNotFoundException') return undefined;
    throw error;
  }
}

function checkKeySchema(description: TableDescription, table: string, partitionKey: string): void {
  const keys = description.KeySchema ?? [];
  const hash = keys.find((k) => k.KeyType === 'HASH');
  const type = description.AttributeDefinitions?.find(
    (a) => a.AttributeName === hash?.AttributeName,
  )?.AttributeType;
  if (keys.length !== 1 || hash?.AttributeName !== partitionKey || type !== 'S') {
    const found = keys.map((k) => `${k.AttributeName} (${k.KeyType})`).join(', ');
    throw new InvalidArgumentError(
      `DynamoDB table '${table}' has key schema [${found}], but baton needs a single string partition key ` +
        `'${partitionKey}'. Fix: set BATON_DYNAMODB_PARTITION_KEY / partitionKey to the table's partition key, ` +
        'or use another table.',
      { backend: BACKEND },
    );
  }
}

/** Name of the SDK error, whether thrown as is or wrapped as the `cause` of a baton error. */
function sdkErrorName(error: unknown): string | undefined {
  const cause = typeof error === 'object' && error !== null && 'cause' in error ? error.cause : error;
  return typeof cause === 'object' && cause !== null && 'name' in cause ? String(cause.name) : undefined;
}
