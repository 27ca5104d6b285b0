export * from './election-suite/index.js';
export * from './lock-suite/index.js';
export * from './lock-suite/memory-harness.js';
export * from './semaphore-suite/index.js';
export * from './task-suite/index.js';
