// DynamoDB baselines: the raw AWS SDK v3 client doing the minimum requests for a lock round trip, and the
// peer library dynamodb-lock-client (AWS SDK v2 DocumentClient), both pointed at the same dynalite.

import { Agent } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { CreateTableCommand, DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { benchDir } from './packages.mjs';

const require = createRequire(join(benchDir, 'package.json'));

/** dynalite accepts any credentials; the region only has to be valid. */
export const LOCAL_AWS = {
  region: 'us-east-1',
  credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
};

/** Creates a table with a string hash key (ignores "already exists"). */
export async function createTable(endpoint, table, hashKey) {
  const client = new DynamoDBClient({ endpoint, ...LOCAL_AWS });
  try {
    await client.send(
      new CreateTableCommand({
        TableName: table,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: hashKey, AttributeType: 'S' }],
        KeySchema: [{ AttributeName: hashKey, KeyType: 'HASH' }],
      }),
    );
  } catch (error) {
    if (error?.name !== 'ResourceInUseException') throw error;
  } finally {
    client.destroy();
  }
}

const S = (value) => ({ S: value });

/**
 * The raw client doing the least a correct lock round trip needs: one conditional UpdateItem that takes the
 * key and increments a fence (returned), one UpdateItem that clears the owner, conditional on still owning
 * it (the same request either way; the condition only makes it safe). No session, no heartbeat, no
 * bookkeeping: the floor any DynamoDB lock sits on.
 */
export async function rawDynamoLock(endpoint, table = 'bench_raw_locks') {
  await createTable(endpoint, table, 'pk');
  const client = new DynamoDBClient({ endpoint, ...LOCAL_AWS });
  const owner = `raw-${process.pid}`;
  return {
    async acquire(key) {
      try {
        const out = await client.send(
          new UpdateItemCommand({
            TableName: table,
            Key: { pk: S(key) },
            ConditionExpression: 'attribute_not_exists(#owner)',
            UpdateExpression: 'SET #owner = :owner ADD #fence :one',
            ExpressionAttributeNames: { '#owner': 'owner', '#fence': 'fence' },
            ExpressionAttributeValues: { ':owner': S(owner), ':one': { N: '1' } },
            ReturnValues: 'UPDATED_NEW',
          }),
        );
        return Number(out.Attributes.fence.N);
      } catch (error) {
        if (error?.name === 'ConditionalCheckFailedException') return null;
        throw error;
      }
    },
    async release(key) {
      await client.send(
        new UpdateItemCommand({
          TableName: table,
          Key: { pk: S(key) },
          ConditionExpression: '#owner = :owner',
          UpdateExpression: 'REMOVE #owner',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':owner': S(owner) },
        }),
      );
    },
    close: () => client.destroy(),
  };
}

/**
 * dynamodb-lock-client in FailOpen mode (leases with fencing tokens and heartbeats, the mode comparable to
 * ours) on an AWS SDK v2 DocumentClient. The v2 SDK does not reuse connections by default; the peer gets a
 * keep-alive agent (what AWS_NODEJS_CONNECTION_REUSE_ENABLED=1 does) so that it is not penalised for a
 * default nobody runs in production.
 */
export async function peerDynamoLock(endpoint, table = 'bench_peer_locks', options = {}) {
  await createTable(endpoint, table, 'id');
  const AWS = require('aws-sdk');
  const DynamoDBLockClient = require('dynamodb-lock-client');
  const agent = new Agent({ keepAlive: true, maxSockets: 50 });
  const service = new AWS.DynamoDB({
    endpoint,
    region: LOCAL_AWS.region,
    credentials: new AWS.Credentials(
      LOCAL_AWS.credentials.accessKeyId,
      LOCAL_AWS.credentials.secretAccessKey,
    ),
    httpOptions: { agent },
  });
  const dynamodb = new AWS.DynamoDB.DocumentClient({ service });
  const client = new DynamoDBLockClient.FailOpen({
    dynamodb,
    lockTable: table,
    partitionKey: 'id',
    heartbeatPeriodMs: options.heartbeatPeriodMs ?? 3_000,
    leaseDurationMs: options.leaseDurationMs ?? 10_000,
    retryCount: 0,
    owner: `peer-${process.pid}`,
  });
  return {
    /** Resolves the lock (with `fencingToken`), or null when it is held by someone else. */
    acquire: (key) =>
      new Promise((resolve, reject) => {
        client.acquireLock(key, (error, lock) => {
          if (error?.code === 'FailedToAcquireLock') resolve(null);
          else if (error) reject(error);
          else resolve(lock);
        });
      }),
    release: (lock) =>
      new Promise((resolve, reject) => lock.release((error) => (error ? reject(error) : resolve()))),
    close: () => agent.destroy(),
  };
}
