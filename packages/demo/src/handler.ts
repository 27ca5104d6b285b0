/**
 * The demo's handler as a module for `baton worker --handler` (the demo's child workers load it). Reads
 * `DATABASE_URL` and `BATON_DEMO_SLEEP_MS` from the environment.
 */
import type { TaskContext, TaskHandler } from '@baton/core';
import { createDemoHandler, demoPool } from './effects.js';

let handler: TaskHandler | undefined;

export default function demoTask(context: TaskContext): unknown {
  if (!handler) {
    const url = process.env.DATABASE_URL;
    if (!url) throw new Error('the demo handler needs DATABASE_URL');
    handler = createDemoHandler(demoPool(url), { sleepMs: Number(process.env.BATON_DEMO_SLEEP_MS ?? 5) });
  }
  return handler(context);
}
