import { DescribeTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ConfigError, isBatonError, PermissionDeniedError } from '@baton/core';
import { BACKEND } from './errors.js';
import type { CallLimits, Requester } from './requester.js';

/** The setting that lets a provider use a table with replicas, as the user writes it. */
export const ALLOW_GLOBAL_TABLE = 'BATON_DYNAMODB_ALLOW_GLOBAL_TABLE (allowGlobalTable)';

/**
 * Refuses a lock table that is a global table (replicas in other regions). DynamoDB replicates between
 * regions last-writer-wins, after the fact: a conditional write is checked only against its own region's
 * copy, so two regions can each grant the same key, and fences can repeat. One DescribeTable (version
 * 2019.11.21 global tables list their `Replicas` there).
 */
export async function refuseGlobalTable(options: {
  client: DynamoDBClient;
  requester: Requester;
  table: string;
  limits?: CallLimits;
}): Promise<void> {
  const { client, requester, table } = options;
  let replicas: string[];
  try {
    const output = await requester.run(
      'DescribeTable',
      (abortSignal) => client.send(new DescribeTableCommand({ TableName: table }), { abortSignal }),
      options.limits,
    );
    replicas = (output.Table?.Replicas ?? []).map((r) => r.RegionName ?? '?');
  } catch (error) {
    if (isBatonError(error) && error.code === 'PERMISSION_DENIED') {
      throw new PermissionDeniedError(
        `DynamoDB DescribeTable on table '${table}' was denied. baton reads the table's description once per ` +
          'provider to refuse a global table (replicas in other regions break exclusivity). Fix: allow ' +
          `dynamodb:DescribeTable on the table, or set ${ALLOW_GLOBAL_TABLE}=true if you know it has no replicas.`,
        { cause: error, backend: BACKEND },
      );
    }
    throw error;
  }
  if (replicas.length > 0) {
    throw new ConfigError(
      ALLOW_GLOBAL_TABLE,
      `DynamoDB table '${table}' is a global table (replicas in ${replicas.join(', ')}). Its regions replicate ` +
        'last-writer-wins after each write is accepted, so two regions can both grant one key and repeat a ' +
        'fence: baton would not be exclusive. Fix: use a table without replicas (one region takes every ' +
        `lock request), or set ${ALLOW_GLOBAL_TABLE}=true only if every worker uses one region's endpoint ` +
        'and nothing writes lock items in the others.',
      { backend: BACKEND },
    );
  }
}
