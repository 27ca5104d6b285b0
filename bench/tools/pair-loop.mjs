// A closed loop of acquire+release pairs on new keys, one session, concurrency 1, for CPU profiles of the
// client side of a backend (what lock-roundtrip's "client CPU" column sums up):
//
//   node --cpu-prof --cpu-prof-dir=/tmp/prof bench/tools/pair-loop.mjs redis [pairs]
//
// Backends with a server (consul, dynamodb, etcd, redis) get it in a child process, as in the benchmarks, so
// the profile holds the client alone. Prints pairs/s and the client's CPU µs per pair.

import { createProvider, serverKind } from '../lib/locks.mjs';
import { startServer } from '../lib/servers.mjs';

const backend = process.argv[2] ?? 'redis';
const pairs = Number(process.argv[3] ?? 20_000);
const kind = serverKind(backend);
const server = kind ? await startServer(kind) : undefined;
const provider = await createProvider(backend, server);
const session = await provider.openSession();
try {
  const loop = async (prefix, n) => {
    for (let i = 0; i < n; i++) {
      const lease = await session.tryAcquire(`${prefix}/${i}`);
      if (!lease) throw new Error(`${prefix}/${i} unexpectedly held`);
      await lease.release();
    }
  };
  await loop('warm-up', Math.min(2_000, pairs));
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  await loop('pair', pairs);
  const { user, system } = process.cpuUsage(cpu);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  console.log(
    `${backend}: ${Math.round((pairs / ms) * 1000)} pairs/s, client CPU ${((user + system) / pairs).toFixed(1)} µs/pair`,
  );
} finally {
  await session.destroy().catch(() => {});
  await provider.close();
  await server?.close();
}
