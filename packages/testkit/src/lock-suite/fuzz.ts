import type { LockSession } from '@baton/core';
import { check, checkEqual, defineCase, delay } from './context.js';
import type { LockHarnessFactory, LockSuiteOptions, TestFn } from './types.js';

/**
 * Contended fuzz: several sessions race on a few keys, each incrementing a shared non-atomic counter per
 * key (read, pause, write) only while holding the key. With exclusivity the counters come out exact, and
 * the fences of successive critical sections on a key strictly increase.
 */
export function fuzzTests(test: TestFn, factory: LockHarnessFactory, options: LockSuiteOptions): void {
  const sessionsCount = options.fuzz?.sessions ?? 5;
  const keysCount = options.fuzz?.keys ?? 3;
  const rounds = options.fuzz?.rounds ?? 20;
  defineCase(
    test,
    factory,
    options,
    `fuzz: ${sessionsCount} sessions × ${rounds} rounds on ${keysCount} keys keep a non-atomic counter exact`,
    async (ctx) => {
      const sessions: LockSession[] = [];
      for (let i = 0; i < sessionsCount; i++) sessions.push(await ctx.open());
      const keys = Array.from({ length: keysCount }, (_, i) => ctx.key(`f${i}`));
      const counters = new Map(keys.map((k) => [k, 0]));
      const fences = new Map<string, number[]>(keys.map((k) => [k, []]));
      let inside = 0;
      let maxInside = 0;
      let done = 0;
      await Promise.all(
        sessions.map(async (session, s) => {
          for (let r = 0; r < rounds; r++) {
            const key = keys[(s + r) % keys.length]!;
            let lease = await session.tryAcquire(key);
            while (!lease) {
              await delay(2 + Math.random() * 10);
              lease = await session.tryAcquire(key);
            }
            inside++;
            maxInside = Math.max(maxInside, inside);
            const value = counters.get(key)!;
            fences.get(key)!.push(lease.fence);
            await delay(Math.random() * 4);
            check(!lease.signal.aborted, 'lease lost during a short critical section');
            counters.set(key, value + 1);
            inside--;
            await lease.release();
            done++;
          }
        }),
      );
      checkEqual(done, sessionsCount * rounds, 'completed critical sections');
      const total = [...counters.values()].reduce((a, b) => a + b, 0);
      checkEqual(total, sessionsCount * rounds, 'sum of non-atomic counters');
      for (const [key, list] of fences) {
        for (let i = 1; i < list.length; i++) {
          check(list[i]! > list[i - 1]!, `fences on ${key} must strictly increase: ${list.join(',')}`);
        }
      }
      check(maxInside <= keysCount, 'never more holders at once than keys');
    },
  );
}
