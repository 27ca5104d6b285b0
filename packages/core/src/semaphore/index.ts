export { type SemaphoreCensus, semaphoresIn } from './census.js';
export { MAX_SEMAPHORE_LIMIT, semaphore, semaphoreLineKey, semaphoreQueues, slotKey } from './semaphore.js';
export type * from './types.js';
