// The lock servers of a chaos run, each with what the harness needs from it: the address workers' proxies
// forward to, the environment a worker gets, server-side faults, and the server-side lease history.

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startConsulTestServer } from '@baton/test-servers/consul-server';
import { startDynalite } from '@baton/test-servers/dynalite';
import { leasesFromConsulHistory, leasesFromDynamoWrites } from './checker.mjs';
import { DynamoRecorder } from './dynamo-recorder.mjs';

const run = promisify(execFile);

/** Harness `performance.now()` readings as epoch ms. */
export const toEpoch = (t) => performance.timeOrigin + t;

/**
 * @typedef {object} LockServer
 * @property {'consul' | 'dynamodb'} name
 * @property {{ host: string, port: number }} target where the workers' lock proxies forward to
 * @property {(proxyPort: number) => Record<string, string>} env a worker's lock settings
 * @property {(durationMs: number) => void} [election] Consul only
 * @property {(count: number) => void} loseAnswers the next `count` writes apply but lose their answers
 * @property {() => void} clear ends server-side faults
 * @property {() => { leases: import('./checker.mjs').Lease[], grantViolations: import('./checker.mjs').Violation[], exactFences: boolean, records: unknown[] }} history
 * @property {() => Promise<void>} close
 */

/**
 * The Consul-compatible test server (sub-second TTLs allowed). Fences are ModifyIndexes.
 * @returns {Promise<LockServer>}
 */
export async function startConsul({ onEvent = () => {} } = {}) {
  const server = await startConsulTestServer({ sessionTtlMinMs: 100 });
  return {
    name: 'consul',
    target: { host: server.host, port: server.port },
    env: (port) => ({
      BATON_BACKEND: 'consul',
      CONSUL_HTTP_ADDR: `http://127.0.0.1:${port}`,
      BATON_CONSUL_ALLOW_SHORT_TTL: 'true',
    }),
    election: (durationMs) => server.faults.leaderElection({ durationMs }),
    loseAnswers: (count) => {
      server.faults.failNext(count, { method: 'PUT', afterProcessing: true, status: 500 });
    },
    clear: () => server.faults.clear(),
    history: () => {
      const records = server.history();
      for (const record of records) onEvent({ type: 'consul-lock', ...record });
      const leases = leasesFromConsulHistory(records, { prefix: 'baton/', toEpoch });
      return { leases, grantViolations: [], exactFences: false, records };
    },
    close: () => server.close(),
  };
}

/**
 * dynalite behind the recording proxy. The lock table is created with the real CLI
 * (`baton dynamodb create-table`).
 * @returns {Promise<LockServer>}
 */
export async function startDynamo({ root, onEvent = () => {} }) {
  const dynalite = await startDynalite();
  const recorder = new DynamoRecorder({
    target: dynalite.endpoint,
    onWrite: (write) => onEvent({ type: 'dynamodb-lock-write', ...write }),
  });
  await recorder.start();
  const table = 'baton_chaos_locks';
  const credentials = {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'chaos',
    AWS_SECRET_ACCESS_KEY: 'chaos',
    BATON_DYNAMODB_TABLE: table,
  };
  await run(process.execPath, [join(root, 'packages/cli/dist/bin.js'), 'dynamodb', 'create-table'], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      BATON_BACKEND: 'dynamodb',
      AWS_ENDPOINT_URL_DYNAMODB: dynalite.endpoint,
      ...credentials,
    },
  });
  return {
    name: 'dynamodb',
    target: { host: '127.0.0.1', port: recorder.port },
    env: (port) => ({
      BATON_BACKEND: 'dynamodb',
      AWS_ENDPOINT_URL_DYNAMODB: `http://127.0.0.1:${port}`,
      ...credentials,
    }),
    loseAnswers: (count) => recorder.loseAnswers(count),
    clear: () => recorder.clear(),
    history: () => {
      const { leases, grantViolations } = leasesFromDynamoWrites(recorder.writes, { toEpoch });
      return {
        leases,
        grantViolations,
        exactFences: true,
        records: recorder.writes,
        conditionFailures: recorder.conditionFailures,
        answersLost: recorder.answersLost,
      };
    },
    close: async () => {
      await recorder.close();
      await dynalite.close();
    },
  };
}
