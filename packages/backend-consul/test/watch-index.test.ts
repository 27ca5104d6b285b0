import { type LockHolder, PermissionDeniedError, systemClock, UnavailableError } from '@baton/core';
import { describe, expect, it } from 'vitest';
import type { ConsulHttp, KvEntry, ReadOptions } from '../src/http.js';
import { KeyCodec } from '../src/keys.js';
import { consulWatch } from '../src/watch.js';

type Answer = { entry?: KvEntry; index: number } | Error;

/**
 * Blocking-query bookkeeping that no test server can provoke (an index going backwards takes a snapshot
 * restore or a new leader with an older state): `getKey` answers from a script and records what was asked.
 */
function scripted(answers: Answer[]) {
  const asked: Array<number | undefined> = [];
  const http = {
    getKey: async (_key: string, options: ReadOptions = {}) => {
      asked.push(options.index);
      const next = answers.shift();
      if (next === undefined) {
        await new Promise<void>((resolve) => options.signal?.addEventListener('abort', () => resolve()));
        throw new Error('aborted');
      }
      if (next instanceof Error) throw next;
      return { entry: next.entry, index: next.index };
    },
  } as unknown as ConsulHttp;
  return { http, asked };
}

const codec = new KeyCodec('baton/');
const entry = (session: string, modifyIndex: number, value = 'v'): KvEntry => ({
  Key: 'baton/k',
  Value: value,
  Flags: 0,
  Session: session,
  LockIndex: 1,
  CreateIndex: 1,
  ModifyIndex: modifyIndex,
});

async function collect(answers: Answer[], count: number) {
  const { http, asked } = scripted(answers);
  const controller = new AbortController();
  const seen: Array<LockHolder | null> = [];
  const init = { http, codec, clock: systemClock, waitMs: 1_000, retryBaseMs: 5 };
  for await (const holder of consulWatch(init, 'k', controller.signal)) {
    seen.push(holder);
    if (seen.length === count) controller.abort();
  }
  return { seen, asked };
}

describe('consulWatch index rules', () => {
  it('starts non-blocking, then blocks on the last index; resets to 0 when the index goes backwards', async () => {
    const { seen, asked } = await collect(
      [
        { entry: entry('s1', 10), index: 10 },
        { entry: entry('s2', 20), index: 20 },
        { entry: entry('s2', 20), index: 5 }, // backwards: restore / new leader
        { entry: entry('s3', 30), index: 30 },
      ],
      3,
    );
    expect(asked).toEqual([0, 10, 20, 0]);
    expect(seen.map((h) => h?.sessionId)).toEqual(['s1', 's2', 's3']);
  });

  it('treats an index below 1 as 1, so the next query still blocks', async () => {
    const { asked } = await collect([{ index: 0 }, { entry: entry('s1', 7), index: 7 }], 2);
    expect(asked).toEqual([0, 1]);
  });

  it('never reports an older holder after a newer one, nor a return without a change', async () => {
    const { seen } = await collect(
      [
        { entry: entry('new', 50), index: 50 },
        { entry: entry('new', 50), index: 50 }, // wait ran out: no change
        { entry: entry('old', 40), index: 60 }, // a stale read: smaller fence
        { index: 70 }, // released
      ],
      2,
    );
    expect(seen).toEqual([{ key: 'k', sessionId: 'new', fence: 50, value: 'v' }, null]);
  });

  it('retries transient errors and ends with a thrown permission error', async () => {
    const { http, asked } = scripted([
      new UnavailableError('No cluster leader'),
      { entry: entry('s1', 3), index: 3 },
      new PermissionDeniedError('Permission denied'),
    ]);
    const seen: Array<LockHolder | null> = [];
    const init = { http, codec, clock: systemClock, waitMs: 1_000, retryBaseMs: 5 };
    await expect(
      (async () => {
        for await (const holder of consulWatch(init, 'k', undefined)) seen.push(holder);
      })(),
    ).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(seen.map((h) => h?.sessionId)).toEqual(['s1']);
    expect(asked).toEqual([0, 0, 3]);
  });
});
