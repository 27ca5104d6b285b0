import {
  canForceRelease,
  Election,
  FORCED_RELEASE_RISKS,
  type JsonValue,
  type LockProvider,
} from '@baton/core';
import { LIMITS } from './options.js';

/** A held lock as the console shows it. */
export interface LockRow {
  key: string;
  sessionId: string;
  fence: number;
  value: string | null;
  /**
   * How long this console has seen this holder with this fence (ms): a lower bound of the lock's age. The
   * lock contract (`LockHolder`) carries no acquisition time or remaining lease, and wall clocks of other
   * machines are not to be trusted, so the console measures on its own monotonic clock.
   */
  seenForMs: number;
}

/** The locks view: the provider's own `list()`, or why there is none. */
export interface LocksView {
  backend: string;
  /** False when the backend has no `list` capability. */
  listable: boolean;
  prefix: string;
  holders: LockRow[];
  /** The backend can force-release a lock (capability `forceRelease`): the page offers it with the token. */
  forceRelease: boolean;
  /** What a forced release risks (core's `FORCED_RELEASE_RISKS`): the page's confirmation says it. */
  releaseRisks: readonly string[];
  /** More locks were held than `LIMITS.locks`. */
  truncated: boolean;
  error: string | null;
}

/** The leader of one election key. */
export interface LeaderRow {
  key: string;
  leader: {
    id: string;
    term: number;
    sessionId: string;
    startedAt: string;
    /** Every field the leader published (host, address, application fields). */
    published: Record<string, JsonValue>;
  } | null;
  error: string | null;
}

/** Reads locks and leaders from one provider, remembering since when it has seen each holder. */
export class LocksReader {
  readonly #provider: LockProvider;
  readonly #prefix: string;
  readonly #elections: Election[];
  readonly #firstSeen = new Map<string, { holder: string; at: number }>();

  constructor(provider: LockProvider, prefix: string, electionKeys: readonly string[]) {
    this.#provider = provider;
    this.#prefix = prefix;
    this.#elections = electionKeys.map((key) => new Election(provider, key));
  }

  async locks(now: number): Promise<LocksView> {
    const provider = this.#provider;
    const view: LocksView = {
      backend: provider.backend,
      listable: Boolean(provider.capabilities.list && provider.list),
      prefix: this.#prefix,
      forceRelease: canForceRelease(provider),
      releaseRisks: FORCED_RELEASE_RISKS,
      holders: [],
      truncated: false,
      error: null,
    };
    if (!view.listable || !provider.list) return view;
    try {
      const holders = await provider.list(this.#prefix);
      view.truncated = holders.length > LIMITS.locks;
      const seen = new Set<string>();
      for (const holder of holders.slice(0, LIMITS.locks)) {
        const identity = `${holder.sessionId}\u0000${holder.fence}`;
        let first = this.#firstSeen.get(holder.key);
        if (!first || first.holder !== identity) {
          first = { holder: identity, at: now };
          this.#firstSeen.set(holder.key, first);
        }
        seen.add(holder.key);
        view.holders.push({
          key: holder.key,
          sessionId: holder.sessionId,
          fence: holder.fence,
          value: holder.value ?? null,
          seenForMs: Math.max(0, now - first.at),
        });
      }
      for (const key of this.#firstSeen.keys()) if (!seen.has(key)) this.#firstSeen.delete(key);
    } catch (error) {
      view.error = messageOf(error);
    }
    return view;
  }

  async leaders(): Promise<LeaderRow[]> {
    return Promise.all(
      this.#elections.map(async (election): Promise<LeaderRow> => {
        try {
          const info = await election.leader();
          if (!info) return { key: election.key, leader: null, error: null };
          const { id, term, sessionId, startedAt, ...rest } = info;
          const published: Record<string, JsonValue> = {};
          for (const [name, value] of Object.entries(rest)) if (value !== undefined) published[name] = value;
          return { key: election.key, leader: { id, term, sessionId, startedAt, published }, error: null };
        } catch (error) {
          return { key: election.key, leader: null, error: messageOf(error) };
        }
      }),
    );
  }
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
