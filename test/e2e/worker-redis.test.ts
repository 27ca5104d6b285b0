import { redisAvailable } from '@baton/test-servers/redis';
import { describe } from 'vitest';
import { exactlyOnceSuite } from './support/exactly-once.js';

// A real redis-server per run; without the binary this warns (or, with CI set, fails) instead of passing.
describe.skipIf(!redisAvailable('e2e worker on Redis'))('redis', () => {
  exactlyOnceSuite('redis');
});
