import { it } from 'vitest';
import { lockProviderSuite, memoryHarness } from '../src/index.js';

lockProviderSuite(it, async () => memoryHarness({ ttlMs: 300 }), {
  expiryBoundMs: 300,
  lockDelayMs: 300,
  granularityMs: 20,
});
