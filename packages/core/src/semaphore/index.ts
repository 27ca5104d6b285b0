export { MAX_SEMAPHORE_LIMIT, semaphore, slotKey } from './semaphore.js';
export type * from './types.js';
