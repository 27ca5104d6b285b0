import type { BatonError } from '@baton/core';
import type { TestFn } from '../lock-suite/types.js';
import {
  defineTaskCase,
  enqueueMany,
  type TaskCase,
  verify,
  verifyEqual,
  verifyRejects,
  verifySame,
} from './context.js';
import type { TaskSourceFactory, TaskSuiteOptions } from './types.js';

async function corruptOne(ctx: TaskCase, ids: readonly string[]): Promise<string> {
  const corrupt = ctx.harness.corrupt;
  verify(corrupt, 'the harness must implement corrupt() when invalidRows is on');
  const victim = ids[Math.floor(ids.length / 2)]!;
  await corrupt.call(ctx.harness, victim);
  return victim;
}

/** Rows the source cannot read: reported as TASK_INVALID, never fatal to the other tasks. */
export function invalidRowTests(
  test: TestFn,
  factory: TaskSourceFactory,
  options: TaskSuiteOptions = {},
): void {
  defineTaskCase(
    test,
    factory,
    options,
    'invalid rows: due() reports an unreadable task through onInvalid and yields all the others',
    async (ctx) => {
      const ids = await enqueueMany(ctx.source, 9);
      const victim = await corruptOne(ctx, ids);
      const reported: BatonError[] = [];
      const seen: string[] = [];
      for await (const task of ctx.source.due({ pageSize: 2, onInvalid: (e) => reported.push(e) })) {
        seen.push(task.id);
      }
      verifySame([...seen].sort(), ids.filter((id) => id !== victim).sort(), 'every other task is yielded');
      verifyEqual(reported.length, 1, 'the bad row is reported once');
      verifyEqual(reported[0]!.code, 'TASK_INVALID', 'code');
      verify(reported[0]!.message.includes(victim), 'the error names the task');
    },
  );

  defineTaskCase(
    test,
    factory,
    options,
    'invalid rows: without onInvalid, due() yields every readable task, then throws TASK_INVALID',
    async (ctx) => {
      const ids = await enqueueMany(ctx.source, 9);
      const victim = await corruptOne(ctx, ids);
      const seen: string[] = [];
      const run = async () => {
        for await (const task of ctx.source.due({ pageSize: 3, start: 0.5 })) seen.push(task.id);
      };
      await verifyRejects(run(), 'TASK_INVALID', 'the pass ends with the error');
      verifySame([...seen].sort(), ids.filter((id) => id !== victim).sort(), 'nothing readable was lost');
      await verifyRejects(ctx.source.get(victim), 'TASK_INVALID', 'get() of the bad row');
      verify((await ctx.source.get(ids[0] === victim ? ids[1]! : ids[0]!)) !== null, 'get() of a good row');
    },
  );
}
