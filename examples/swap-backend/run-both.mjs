// Runs app.mjs once per backend, unchanged: Consul, DynamoDB, PostgreSQL, etcd and Redis locks, against
// servers started here (the Consul-compatible test server, dynalite, PGlite, and a real etcd and redis-server
// when their binaries are installed). Only the environment differs.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DynamoLockProvider } from '@baton/backend-dynamodb';
import { startConsulTestServer } from '@baton/test-servers/consul-server';
import { startDynalite } from '@baton/test-servers/dynalite';
import { ETCD_INSTALL_HINT, findEtcd, startEtcd } from '@baton/test-servers/etcd';
import { startPglite } from '@baton/test-servers/pglite';
import { findRedis, REDIS_INSTALL_HINT, startRedis } from '@baton/test-servers/redis';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'; // Node 20 is supported here

const [db, consul, dynalite, etcd, redis] = await Promise.all([
  startPglite(),
  startConsulTestServer(),
  startDynalite(),
  findEtcd() ? startEtcd() : undefined,
  findRedis() ? startRedis() : undefined,
]);
const credentials = { accessKeyId: 'example', secretAccessKey: 'example' };
const table = new DynamoLockProvider({ endpoint: dynalite.endpoint, credentials });
await table.ensureTable();
await table.close();

const environments = {
  consul: { BATON_BACKEND: 'consul', CONSUL_HTTP_ADDR: consul.url },
  dynamodb: {
    BATON_BACKEND: 'dynamodb',
    AWS_ENDPOINT_URL_DYNAMODB: dynalite.endpoint,
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
  },
  // Locks in the task database itself (DATABASE_URL), in a schema of their own.
  postgres: { BATON_BACKEND: 'postgres', BATON_PG_LOCK_SCHEMA: 'swap_locks' },
  ...(etcd ? { etcd: { BATON_BACKEND: 'etcd', ETCD_ENDPOINTS: etcd.endpoint } } : {}),
  ...(redis ? { redis: { BATON_BACKEND: 'redis', REDIS_URL: redis.url } } : {}),
};
if (!etcd) console.log(`(etcd skipped: no etcd binary. Fix: ${ETCD_INSTALL_HINT}.)`);
if (!redis) console.log(`(redis skipped: no redis-server binary. Fix: ${REDIS_INSTALL_HINT}.)`);

let failed = false;
try {
  for (const [name, lockEnv] of Object.entries(environments)) {
    // A task table records the lock backend its fences come from, so each backend gets its own schema.
    const env = {
      ...process.env,
      ...lockEnv,
      DATABASE_URL: db.connectionString,
      BATON_PG_SCHEMA: `swap_${name}`,
      EXAMPLE_BATCH: name,
    };
    console.log(
      `$ ${Object.entries(lockEnv)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')} node app.mjs`,
    );
    const code = await new Promise((resolve) => {
      spawn(process.execPath, [fileURLToPath(new URL('./app.mjs', import.meta.url))], {
        env,
        stdio: 'inherit',
      }).on('exit', resolve);
    });
    if (code !== 0) failed = true;
  }
} finally {
  await Promise.all([consul.close(), dynalite.close(), etcd?.close(), redis?.close()]);
  await db.close();
}
process.exitCode = failed ? 1 : 0;
