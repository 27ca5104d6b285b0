export * from './acquire.js';
export * from './backoff.js';
export * from './bucket-source.js';
export * from './clock.js';
export * from './config.js';
export * from './duration.js';
export * from './duration-bounds.js';
export * from './election/index.js';
export * from './errors.js';
export * from './force-release.js';
export { holdProcess, whileHolding } from './hold-process.js';
export * from './keepalive.js';
export * from './lease-layout.js';
export type * from './lock.js';
export * from './memory/backend.js';
export * from './memory/provider.js';
export * from './memory/store.js';
export * from './memory-tasks/index.js';
export * from './pending-releases.js';
export * from './provider-base.js';
export * from './redact.js';
export * from './registry.js';
export * from './report.js';
export * from './schema-helpers.js';
export * from './semaphore/index.js';
export * from './session-base.js';
export type * from './task-source.js';
export {
  checkBucketCount,
  checkBucketLease,
  checkDueTime,
  checkFence,
  checkLayoutRequest,
  jsonText,
  MAX_ERROR_MESSAGE_LENGTH,
  MAX_TASK_ATTEMPTS,
  MAX_TASK_DELAY_MS,
  truncateErrorMessage,
} from './task-source-helpers.js';
export * from './waiting-line.js';
export * from './watch.js';
export * from './worker/index.js';
export * from './worker-beat.js';

import { memoryBackend } from './memory/backend.js';
import { registerBackend } from './registry.js';

registerBackend(memoryBackend);
