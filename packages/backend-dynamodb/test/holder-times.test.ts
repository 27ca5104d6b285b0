import { randomUUID } from 'node:crypto';
import { GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { LOCK_PREFIX } from '../src/index.js';
import { delay, useDynalite } from './helpers.js';

const fx = useDynalite('times');
const TTL = 1_000;
const key = () => `times/${randomUUID()}`;

async function rawAcquired(k: string): Promise<{ t?: number; o?: string } | undefined> {
  const { Item } = await fx.raw.send(
    new GetItemCommand({ TableName: fx.table, Key: { key: { S: LOCK_PREFIX + k } }, ConsistentRead: true }),
  );
  const stamp = Item?.acquired?.M;
  return stamp && { t: Number(stamp.t?.N), o: stamp.o?.S };
}

describe('dynamodb: holder times', () => {
  it('the grant stamps acquired (the holder clock, with its owner); the lease bound is the takeover wait', async () => {
    const provider = fx.provider({ ttlMs: TTL });
    const session = await provider.openSession();
    const k = key();
    const before = Date.now();
    const lease = await session.tryAcquire(k);
    const after = Date.now();
    const stamp = await rawAcquired(k);
    expect(stamp?.o).toBe(session.id);
    expect(stamp!.t).toBeGreaterThanOrEqual(before);
    expect(stamp!.t).toBeLessThanOrEqual(after);
    const holder = await provider.getHolder(k);
    expect(holder).toMatchObject({ fence: lease!.fence, acquiredAt: stamp!.t, acquiredAtSource: 'holder' });
    expect(holder).not.toHaveProperty('leaseRemainingMs');
    // First sight of this version: the whole wait, lease duration plus the default margin (a tenth).
    expect(holder!.leaseRemainingAtMostMs).toBe(TTL + TTL / 10);
    await lease!.release();
    expect(await rawAcquired(k)).toBeUndefined();
  });

  it('the bound runs down while the version stays unchanged, as this provider sees it', async () => {
    const holderSide = fx.provider({ ttlMs: TTL });
    const observer = fx.provider({ ttlMs: TTL });
    const session = await holderSide.openSession();
    const k = key();
    await session.tryAcquire(k);
    session.abandon();
    const first = (await observer.getHolder(k))!.leaseRemainingAtMostMs!;
    await delay(300);
    const second = (await observer.getHolder(k))?.leaseRemainingAtMostMs;
    expect(second).toBeLessThanOrEqual(first - 250);
    expect(second).toBeGreaterThan(0);
  });

  it('a holder without a stamp (an older baton), or with another owner stamp, is reported without acquiredAt', async () => {
    const provider = fx.provider({ ttlMs: TTL });
    const session = await provider.openSession();
    const [old, foreign] = [key(), key()];
    const lease = await session.tryAcquire(old);
    await session.tryAcquire(foreign);
    await fx.raw.send(
      new UpdateItemCommand({
        TableName: fx.table,
        Key: { key: { S: LOCK_PREFIX + old } },
        UpdateExpression: 'REMOVE acquired',
      }),
    );
    await fx.raw.send(
      new UpdateItemCommand({
        TableName: fx.table,
        Key: { key: { S: LOCK_PREFIX + foreign } },
        UpdateExpression: 'SET acquired.o = :other',
        ExpressionAttributeValues: { ':other': { S: 'someone-before' } },
      }),
    );
    const holder = await provider.getHolder(old);
    expect(holder).toMatchObject({ sessionId: session.id, fence: lease!.fence });
    expect(holder).not.toHaveProperty('acquiredAt');
    expect(await provider.getHolder(foreign)).not.toHaveProperty('acquiredAt');
  });
});
