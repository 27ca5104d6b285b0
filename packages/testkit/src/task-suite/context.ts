import type { DueOptions, DueTask, Task, TaskSource } from '@baton/core';
import type { TestFn } from '../lock-suite/types.js';
import type { TaskSourceFactory, TaskSourceHarness, TaskSourceSettings, TaskSuiteOptions } from './types.js';

/** Settings of every case unless it overrides them: retries far enough apart to be clearly "not due yet". */
export const DEFAULT_SETTINGS: TaskSourceSettings = {
  reclaimAfterMs: 60_000,
  backoff: { baseMs: 60_000, maxMs: 600_000 },
  defaultMaxAttempts: 3,
};

/** A date no source clock reaches while the suite runs. */
export const FAR_FUTURE = new Date('9000-01-01T00:00:00Z');

/** What a case gets: a fresh harness and its settings. */
export interface TaskCase {
  harness: TaskSourceHarness;
  source: TaskSource;
  settings: TaskSourceSettings;
  options: TaskSuiteOptions;
}

/** Registers one case that runs against a fresh harness, closed afterwards whatever happens. */
export function defineTaskCase(
  test: TestFn,
  factory: TaskSourceFactory,
  options: TaskSuiteOptions,
  name: string,
  body: (ctx: TaskCase) => Promise<void>,
  overrides: Partial<TaskSourceSettings> = {},
): void {
  test(
    name,
    async () => {
      const settings = { ...DEFAULT_SETTINGS, ...overrides };
      const harness = await factory(settings);
      try {
        await body({ harness, source: harness.source, settings, options });
      } finally {
        await harness.close();
      }
    },
    options.timeoutMs ?? 30_000,
  );
}

/** Throws a conformance failure unless `condition` holds. */
export function verify(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`task source conformance: ${message}`);
}

/** Throws unless `actual` and `expected` are the same value (`Object.is`). */
export function verifyEqual<T>(actual: T, expected: T, message: string): void {
  if (!Object.is(actual, expected)) {
    throw new Error(`task source conformance: ${message}: expected ${show(expected)}, got ${show(actual)}`);
  }
}

/** Throws unless both values have the same JSON form (object keys in any order; dates as ISO strings). */
export function verifySame(actual: unknown, expected: unknown, message: string): void {
  const [a, e] = [canonical(actual), canonical(expected)];
  if (a !== e) throw new Error(`task source conformance: ${message}:\n  expected ${e}\n  got      ${a}`);
}

/** Awaits `promise`, expecting a rejection with a BatonError of `code`; returns the error. */
export async function verifyRejects(
  promise: Promise<unknown>,
  code: string,
  message: string,
): Promise<unknown> {
  let outcome: unknown;
  try {
    outcome = await promise;
  } catch (error) {
    const actual = (error as { code?: unknown } | null)?.code;
    if (actual !== code) {
      throw new Error(`task source conformance: ${message}: expected a ${code} error, got ${show(error)}`, {
        cause: error,
      });
    }
    return error;
  }
  throw new Error(`task source conformance: ${message}: expected a ${code} rejection, got ${show(outcome)}`);
}

/** Every task of one `due()` pass, in order. */
export async function pass(source: TaskSource, options: DueOptions = {}): Promise<DueTask[]> {
  const tasks: DueTask[] = [];
  for await (const task of source.due(options)) tasks.push(task);
  return tasks;
}

/** Ids of one `due()` pass, in order. */
export async function passIds(source: TaskSource, options: DueOptions = {}): Promise<string[]> {
  return (await pass(source, options)).map((task) => task.id);
}

/** Reads a task that must exist. */
export async function must(source: TaskSource, id: string): Promise<Task> {
  const task = await source.get(id);
  verify(task, `get(${id}) returned null for an enqueued task`);
  return task;
}

/** The source's current time, read from the creation time of a task that never becomes due. */
export async function sourceNow(source: TaskSource): Promise<number> {
  const [id] = await source.enqueue({ kind: 'suite-clock-probe', runAt: FAR_FUTURE });
  return (await must(source, id!)).createdAt.getTime();
}

/** Enqueues `count` tasks of `kind` (payload `{ n }`), one batch. */
export function enqueueMany(source: TaskSource, count: number, kind = 'work'): Promise<string[]> {
  return source.enqueue(Array.from({ length: count }, (_, n) => ({ kind, payload: { n } })));
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(
        Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)),
      );
    }
    return v;
  });
}

function show(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  try {
    return canonical(value) ?? String(value);
  } catch {
    return String(value);
  }
}
