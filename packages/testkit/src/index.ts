export * from './lock-suite/index.js';
export * from './lock-suite/memory-harness.js';
