import type { LockHolder } from '../../lock.js';

/**
 * Lock keys of one task table's buckets: `<prefix>/<namespace>/<buckets>/b/<n>` for bucket `n` and
 * `<prefix>/<namespace>/<buckets>/m/<worker id>` for each live worker (its membership). One `list()` of the
 * common prefix returns both, which is all a worker reads to balance.
 */
export class BucketKeys {
  readonly root: string;

  constructor(prefix: string, namespace: string, buckets: number) {
    this.root = `${prefix}/${namespace}/${buckets}/`;
  }

  bucket(n: number): string {
    return `${this.root}b/${n}`;
  }

  member(workerId: string): string {
    return `${this.root}m/${workerId}`;
  }

  /** Sorts a `list()` of the root into bucket holders and members (by session id). */
  parse(holders: readonly LockHolder[]): {
    buckets: Map<number, LockHolder>;
    members: Map<string, LockHolder>;
  } {
    const buckets = new Map<number, LockHolder>();
    const members = new Map<string, LockHolder>();
    for (const holder of holders) {
      if (!holder.key.startsWith(this.root)) continue;
      const rest = holder.key.slice(this.root.length);
      if (rest.startsWith('b/')) {
        const n = Number(rest.slice(2));
        if (Number.isInteger(n) && n >= 0) buckets.set(n, holder);
      } else if (rest.startsWith('m/')) {
        members.set(rest.slice(2), holder);
      }
    }
    return { buckets, members };
  }
}
