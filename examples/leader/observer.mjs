// An observer: never campaigns; prints who leads now and every change, until SIGINT/SIGTERM.
import { createLockProvider, Election } from '@baton/core';
import { describeLeader, ELECTION_KEY, lockEnv, logger, shutdownSignal } from './shared.mjs';

const log = logger(process.env.OBSERVER_NAME ?? 'observer');
const signal = shutdownSignal();
const provider = await createLockProvider(lockEnv());
const election = new Election(provider, ELECTION_KEY);

log(`current: ${describeLeader(await election.leader())}`);
for await (const info of election.observe({ signal })) log(describeLeader(info));
await provider.close();
log('stopped');
