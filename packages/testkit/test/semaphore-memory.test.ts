import { it } from 'vitest';
import { memoryHarness, semaphoreSuite } from '../src/index.js';

semaphoreSuite(it, async () => memoryHarness({ ttlMs: 300 }), {
  expiryBoundMs: 300,
  lockDelayMs: 300,
  granularityMs: 20,
});
