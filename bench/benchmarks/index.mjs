// The benchmarks, in the order `npm run bench` runs them.

import balancing from './balancing.mjs';
import balancingSim from './balancing-sim.mjs';
import consoleBench from './console.mjs';
import contention from './contention.mjs';
import heartbeat from './heartbeat.mjs';
import latency from './latency.mjs';
import lockPeers from './lock-peers.mjs';
import lockRequests from './lock-requests.mjs';
import lockRoundtrip from './lock-roundtrip.mjs';
import memory from './memory.mjs';
import renewal from './renewal.mjs';
import scaling from './scaling.mjs';
import semaphore from './semaphore.mjs';
import takeover from './takeover.mjs';
import tasksE2e from './tasks-e2e.mjs';

export const benchmarks = [
  lockRoundtrip,
  lockPeers,
  semaphore,
  tasksE2e,
  latency,
  lockRequests,
  contention,
  scaling,
  takeover,
  memory,
  renewal,
  balancing,
  balancingSim,
  consoleBench,
  heartbeat,
];
