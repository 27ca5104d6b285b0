import { type TestDatabase, testDatabase } from '@baton/test-servers/pglite';
import { taskSourceSuite } from '@baton/testkit';
import { afterAll, beforeAll, it } from 'vitest';
import { suiteFactory } from './support.js';

// The whole task-source conformance suite, on PGlite by default and on the server at DATABASE_URL when set.
let db: TestDatabase;
beforeAll(async () => {
  db = await testDatabase();
});
afterAll(async () => {
  await db?.close();
});

taskSourceSuite(
  it,
  suiteFactory(() => db),
  { creationWindow: true, invalidRows: true, bucketLeases: true },
);
