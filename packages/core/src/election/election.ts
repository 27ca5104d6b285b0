import { type Clock, systemClock } from '../clock.js';
import type { LockProvider, LockSession } from '../lock.js';
import { validateKey } from '../session-base.js';
import { campaignOn } from './campaign.js';
import { decodeLeaderInfo } from './info.js';
import { observeLeader } from './observe.js';
import type { CampaignOptions, ElectionOptions, LeaderInfo, Leadership, ObserveOptions } from './types.js';

/**
 * Leader election on one key of a {@link LockProvider}, built only on the lock contract, so every backend
 * supports it. The leader is whoever holds the key's lock; its term is the lock's fence; what it publishes
 * about itself is the lock's value (JSON).
 *
 * ```ts
 * const election = new Election(provider, 'service/reports/leader');
 * const leadership = await election.campaign(session, { value: { address: 'http://10.0.0.7:8080' } });
 * await doLeaderWork({ signal: leadership.signal, fence: leadership.term });
 * await leadership.resign();
 * ```
 *
 * Guarantees: terms strictly increase across leaders; a leader's {@link Leadership.signal} aborts before the
 * lock can be granted to anyone else when it resigns, and at the latest when its session TTL has run out
 * since the last renewal began when it loses contact (the backend frees the lock only after that).
 */
export class Election {
  readonly provider: LockProvider;
  readonly key: string;
  readonly #clock: Clock;
  readonly #wallClock: Clock;

  constructor(provider: LockProvider, key: string, options: ElectionOptions = {}) {
    validateKey(key);
    this.provider = provider;
    this.key = key;
    this.#clock = options.clock ?? provider.clock;
    this.#wallClock = options.clock ?? systemClock;
  }

  /**
   * Resolves once `session` leads: immediately when nobody does, otherwise as soon as the current leader
   * resigns or its lock expires (noticed through the backend's watch, or by polling). Transient backend
   * errors are retried. Rejects with `ABORTED` when `options.signal` aborts (leaving no lock behind, even
   * if it won in the same moment), with `SESSION_LOST` / `CLOSED` when the session ends, with
   * `INVALID_ARGUMENT` when the session already holds the key, and with non-transient backend errors.
   * `session` must belong to this election's provider. While it waits, the campaign keeps the Node.js
   * process alive (baton's own timers do not).
   */
  campaign(session: LockSession, options: CampaignOptions = {}): Promise<Leadership> {
    return campaignOn(session, this.key, options, this.#clock, this.#wallClock);
  }

  /** The current leader, or `null` when nobody leads. A consistent read of the lock. */
  async leader(options: { signal?: AbortSignal } = {}): Promise<LeaderInfo | null> {
    // The leader's own `startedAt` is in its published value: the lock's times would only cost requests.
    const holder = await this.provider.getHolder(this.key, {
      times: false,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return holder ? decodeLeaderInfo(holder) : null;
  }

  /**
   * The current leader (or `null`), then every change: a new term, a `proclaim` within a term, `null` when
   * leadership ends without a successor yet. Built on the provider's watch (server push where the backend
   * has it, polling otherwise), so quick successions may be coalesced, but the latest state is always
   * delivered and never followed by an older one: terms never decrease, and a term that ended never
   * reappears. Ends when `options.signal` aborts; throws only what the watch cannot retry (permission).
   * While iterating, it keeps the Node.js process alive.
   */
  observe(options: ObserveOptions = {}): AsyncIterable<LeaderInfo | null> {
    return observeLeader(this.provider, this.key, options);
  }
}
