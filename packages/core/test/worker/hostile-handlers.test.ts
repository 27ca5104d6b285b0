import { describe, expect, it } from 'vitest';
import {
  type FailResult,
  MAX_ERROR_MESSAGE_LENGTH,
  MemoryTaskSource,
  type TaskFailure,
  type TaskHandler,
  truncateErrorMessage,
  Worker,
} from '../../src/index.js';
import { memoryLocks, record } from './helpers.js';

/** The reference source, remembering the failure messages the worker hands it. */
class RecordingSource extends MemoryTaskSource {
  readonly messages: string[] = [];
  override fail(id: string, fence: number, failure: TaskFailure): Promise<FailResult> {
    this.messages.push(failure.message);
    return super.fail(id, fence, failure);
  }
}

/** Runs one `once` pass of a worker over a single task (5 attempts allowed) and returns what happened. */
async function runOnce(handler: TaskHandler) {
  const { provider } = memoryLocks();
  const source = new RecordingSource({ retryDelayMs: () => 0 });
  const [id] = await source.enqueue({ kind: 'hostile', maxAttempts: 5 });
  const worker = new Worker({ locks: provider(), source, schedule: { once: true }, handler });
  const failed = record(worker, 'task-failed');
  const dead = record(worker, 'task-dead');
  await worker.run();
  return { task: (await source.get(id!))!, failed, dead, messages: source.messages };
}

const cyclic: Record<string, unknown> = { name: 'loop' };
cyclic.self = cyclic;

/** Results no source can store as JSON: retrying would only produce another such result. */
const unstorable: Array<[string, unknown]> = [
  ['a BigInt', { total: 10n }],
  ['a cyclic object', cyclic],
  ['a function', () => 'not data'],
  ['a Symbol', Symbol('result')],
  [
    'an object whose toJSON throws',
    {
      toJSON() {
        throw new Error('toJSON refused');
      },
    },
  ],
];

describe('Worker: handlers that return what cannot be stored', () => {
  it.each(unstorable)('a result with %s makes the task dead after one attempt', async (_what, result) => {
    const { task, failed, dead } = await runOnce(() => result);
    expect(task).toMatchObject({ status: 'dead', attempts: 1 });
    expect(task.lastError).toMatch(/^HANDLER_FAILED: result could not be stored: INVALID_ARGUMENT: /);
    expect(failed).toHaveLength(0);
    expect(dead).toHaveLength(1);
  });

  it('a storable result still completes (the rows above fail for their result alone)', async () => {
    const { task } = await runOnce(() => ({ total: '10' }));
    expect(task).toMatchObject({ status: 'done', attempts: 1, result: { total: '10' } });
  });
});

describe('Worker: handler errors of any size', () => {
  it('a 5 MB error message is stored cut to MAX_ERROR_MESSAGE_LENGTH characters, its start kept', async () => {
    const message = `boom:${'x'.repeat(5 * 1024 * 1024)}:end`;
    const { task, failed, messages } = await runOnce(() => {
      throw new Error(message);
    });
    // The worker cuts it before the source sees it (a source that keeps whole messages is still safe).
    expect(messages[0]!.length).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_LENGTH);
    expect(task.status).toBe('failed');
    expect(task.lastError!.length).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_LENGTH);
    expect(task.lastError).toMatch(/^boom:x{1000}/);
    expect(task.lastError).toMatch(/… \[truncated: 5242889 characters in all\]$/);
    // The event keeps the error itself; only what is stored (and logged) is cut.
    expect((failed[0]!.error as Error).message).toBe(message);
  });

  it('truncateErrorMessage keeps short messages whole and never splits a surrogate pair', () => {
    expect(truncateErrorMessage('short')).toBe('short');
    const exact = 'y'.repeat(MAX_ERROR_MESSAGE_LENGTH);
    expect(truncateErrorMessage(exact)).toBe(exact);
    for (let shift = 0; shift < 4; shift++) {
      const cut = truncateErrorMessage(`${'a'.repeat(shift)}${'😀'.repeat(MAX_ERROR_MESSAGE_LENGTH)}`);
      expect(cut.length).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_LENGTH);
      expect(cut).not.toMatch(/\p{Cs}/u);
    }
  });
});
