/**
 * Where baton keeps its keys under the configured prefix: `<prefix>lock/<key>` for a lock (value: the
 * published value; lease: the holder's session lease), `<prefix>delay/<key>` for the lock-delay guard
 * written with it (lease: the holder's delay lease, which outlives the session lease by the lock-delay), and
 * `<prefix>wait/<key>\0<id>` for the places of blocking waiters (lease: the waiter's session lease; value:
 * when the waiter lined up, its wall clock in ms, empty on places written before it was stored), and
 * `<prefix>since/<key>` for the acquisition time of the lock (value: the holder's wall clock in ms; lease: the
 * holder's session lease), put in the txn that takes the key, so its `mod_revision` is the fence.
 * Caller keys are stored as they are (etcd keys are bytes), so the two directories never collide.
 */
export class EtcdKeys {
  readonly prefix: string;

  constructor(prefix: string) {
    this.prefix = prefix;
  }

  lock(key: string): Buffer {
    return Buffer.from(`${this.prefix}lock/${key}`);
  }

  guard(key: string): Buffer {
    return Buffer.from(`${this.prefix}delay/${key}`);
  }

  since(key: string): Buffer {
    return Buffer.from(`${this.prefix}since/${key}`);
  }

  /** The range `[from, to)` of the acquisition times of the locks whose caller key starts with `callerPrefix`. */
  sinceRange(callerPrefix: string): { from: Buffer; to: Buffer } {
    const from = this.since(callerPrefix);
    return { from, to: rangeEnd(from) };
  }

  /** The caller key of an acquisition-time key, or `undefined` for any other key. */
  sinceKey(key: Buffer): string | undefined {
    const text = key.toString('utf8');
    const head = `${this.prefix}since/`;
    return text.startsWith(head) ? text.slice(head.length) : undefined;
  }

  /**
   * The range `[from, to)` of the line of waiters of `key`: `<prefix>wait/<key>\0<place id>`. Keys hold no
   * NUL, so the line of `a` never contains a place of `a/b`.
   */
  lineRange(key: string): { from: Buffer; to: Buffer } {
    const from = Buffer.from(`${this.prefix}wait/${key}\0`);
    return { from, to: rangeEnd(from) };
  }

  /** The range `[from, to)` of the locks whose caller key starts with `callerPrefix`. */
  lockRange(callerPrefix: string): { from: Buffer; to: Buffer } {
    const from = this.lock(callerPrefix);
    return { from, to: rangeEnd(from) };
  }

  /** The caller key of a lock key, or `undefined` for any other key. */
  callerKey(lockKey: Buffer): string | undefined {
    const text = lockKey.toString('utf8');
    const head = `${this.prefix}lock/`;
    return text.startsWith(head) ? text.slice(head.length) : undefined;
  }
}

/** The end of the range of every key starting with `start` (etcd's `--prefix`). */
export function rangeEnd(start: Buffer): Buffer {
  const end = Buffer.from(start);
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] ?? 0) < 0xff) {
      end[i] = (end[i] ?? 0) + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
