import { DescribeTableCommand, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { startDynalite } from '@baton/test-servers/dynalite';
import { describe, expect, it } from 'vitest';
import { createTable, rawClient, uniqueTable } from './helpers.js';

describe('startDynalite (testkit)', () => {
  it('listens on a random port and creates tables ACTIVE at once', async () => {
    const [one, two] = await Promise.all([startDynalite(), startDynalite()]);
    try {
      expect(one.port).not.toBe(two.port);
      expect(one.endpoint).toBe(`http://127.0.0.1:${one.port}`);
      const client = rawClient(one.endpoint);
      const table = uniqueTable('starter');
      await createTable(client, table);
      const { Table } = await client.send(new DescribeTableCommand({ TableName: table }));
      expect(Table?.TableStatus).toBe('ACTIVE');
      client.destroy();
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  });

  it('close() waits for requests in flight, refuses new ones, and is idempotent', async () => {
    const server = await startDynalite();
    const client = rawClient(server.endpoint);
    const table = uniqueTable('close');
    await createTable(client, table);
    let answered = 0;
    const reads = Array.from({ length: 50 }, (_, i) =>
      client.send(new GetItemCommand({ TableName: table, Key: { key: { S: `k${i}` } } })).then(
        () => {
          answered++;
          return 'answered';
        },
        () => 'failed',
      ),
    );
    while (answered === 0) await new Promise((resolve) => setImmediate(resolve));
    await Promise.all([server.close(), server.close()]);
    const outcomes = await Promise.all(reads);
    expect(outcomes.every((o) => o === 'answered' || o === 'failed')).toBe(true);
    await expect(
      client.send(new GetItemCommand({ TableName: table, Key: { key: { S: 'after' } } })),
    ).rejects.toThrow();
    client.destroy();
  });
});
