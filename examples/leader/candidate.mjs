// A candidate: campaigns on the election key and, while it leads, "does the leader's work" (here: waits)
// until it is told to stop. SIGINT/SIGTERM make it step down cleanly (resign), which hands leadership
// over at once; SIGKILL simulates a crash, and the others take over once the session expires.
import { createLockProvider, runWhileLeader } from '@baton/core';
import { ELECTION_KEY, lockEnv, logger, shutdownSignal, untilAborted } from './shared.mjs';

const name = process.env.CANDIDATE_NAME ?? `candidate-${process.pid}`;
const log = logger(name);
const signal = shutdownSignal();
const provider = await createLockProvider(lockEnv());

log(`campaigning on '${ELECTION_KEY}' (pid ${process.pid})`);
await runWhileLeader(
  provider,
  ELECTION_KEY,
  async (leadership) => {
    log(`LEADING term ${leadership.term}`);
    // Publish something new without a new election: observers see it, the term stays.
    await leadership.proclaim({ status: 'ready' }).catch((error) => log(`proclaim failed: ${error.message}`));
    // The leader's work goes here; every write it makes should carry `leadership.term` as its fence.
    await untilAborted(leadership.signal);
    log(`stepping down from term ${leadership.term} (${leadership.signal.reason?.code ?? 'stopped'})`);
  },
  {
    signal,
    value: { id: name, pid: process.pid },
    sessionOptions: { name },
    onError: (error) => log(`recovering from ${error?.code ?? ''} ${error?.message ?? error}`),
  },
);
await provider.close();
log('stopped');
