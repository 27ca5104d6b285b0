import type { Lease } from '../lock.js';
import type { Permit } from './types.js';

/** The permit that a held slot lock is. */
export function permitOf(name: string, limit: number, slot: number, lease: Lease, value?: string): Permit {
  const release = () => lease.release();
  return {
    name,
    limit,
    slot,
    key: lease.key,
    fence: lease.fence,
    sessionId: lease.sessionId,
    value,
    signal: lease.signal,
    release,
    [Symbol.asyncDispose]: async () => {
      await release();
    },
  };
}
