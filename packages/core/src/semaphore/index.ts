export { MAX_SEMAPHORE_LIMIT, semaphore, semaphoreLineKey, slotKey } from './semaphore.js';
export type * from './types.js';
