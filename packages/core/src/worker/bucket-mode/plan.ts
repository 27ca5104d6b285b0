/** A live worker as the balancing rule sees it. */
export interface Member {
  readonly id: string;
  /** Most buckets it takes (`maxBuckets`). */
  readonly cap: number;
  /** Buckets it holds now. */
  readonly held: number;
}

/** What one worker should do in this balancing round. */
export interface BalancePlan {
  /** Buckets this worker should hold. */
  readonly target: number;
  /** Free buckets to try to take, best first (at most `target - held` of them). */
  readonly acquire: readonly number[];
  /** How many of its buckets to hand back. */
  readonly release: number;
}

/**
 * The share of each member: `buckets` spread as evenly as the caps allow (water-filling), the remainder
 * going one each to the members that hold the most now (ties by id), so that a member holding one more than
 * the even share keeps it rather than moving it. Deterministic: every worker computes the same targets from
 * the same view.
 */
export function targets(buckets: number, members: readonly Member[]): Map<string, number> {
  const result = new Map<string, number>();
  let open = [...members].sort((a, b) => b.held - a.held || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  let remaining = buckets;
  for (;;) {
    if (open.length === 0) return result;
    const share = Math.floor(remaining / open.length);
    const capped = open.filter((m) => m.cap <= share);
    if (capped.length === 0) break;
    for (const m of capped) {
      result.set(m.id, m.cap);
      remaining -= m.cap;
    }
    open = open.filter((m) => m.cap > share);
  }
  const base = Math.floor(remaining / open.length);
  const extra = remaining % open.length;
  open.forEach((m, i) => {
    result.set(m.id, base + (i < extra ? 1 : 0));
  });
  return result;
}

/**
 * One worker's balancing round, from a view of the live members (itself included) and of which buckets are
 * held. It takes free buckets while below its target, preferring the ones whose rendezvous hash with its id
 * is highest (so workers that look at the same free buckets at once mostly pick different ones), and hands
 * back what it holds above its target. It never takes a held bucket: a bucket changes hands only by a
 * release or by its holder's lease expiring.
 */
export function planBalance(
  buckets: number,
  members: readonly Member[],
  self: Member,
  free: readonly number[],
): BalancePlan {
  const all = members.some((m) => m.id === self.id)
    ? members.map((m) => (m.id === self.id ? self : m))
    : [...members, self];
  const target = targets(buckets, all).get(self.id) ?? 0;
  const want = Math.max(0, target - self.held);
  const acquire =
    want === 0
      ? []
      : [...free].sort((a, b) => rendezvous(self.id, b) - rendezvous(self.id, a) || a - b).slice(0, want);
  return { target, acquire, release: Math.max(0, self.held - target) };
}

/** A well-spread 32-bit hash of (worker, bucket): FNV-1a of `id#bucket`. */
export function rendezvous(id: string, bucket: number): number {
  const text = `${id}#${bucket}`;
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  // A final avalanche, so that neighbouring buckets do not get neighbouring scores.
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  return hash >>> 0;
}
