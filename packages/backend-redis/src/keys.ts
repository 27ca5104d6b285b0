/**
 * Where baton keeps its keys under the configured prefix: `<prefix>lock:<key>` for a lock (a hash, see
 * `scripts.ts`), `<prefix>session:<id>` for a live session (expires with it), and `<prefix>fence` for the
 * fence counter. Caller keys are stored as they are (Redis keys are bytes).
 */
export class RedisKeys {
  readonly prefix: string;
  readonly fence: string;

  constructor(prefix: string) {
    this.prefix = prefix;
    this.fence = `${prefix}fence`;
  }

  lock(key: string): string {
    return `${this.prefix}lock:${key}`;
  }

  session(id: string): string {
    return `${this.prefix}session:${id}`;
  }

  /** The `SCAN MATCH` pattern of the locks whose caller key starts with `callerPrefix`. */
  lockPattern(callerPrefix: string): string {
    return `${this.lock(callerPrefix).replace(/[*?[\]\\]/g, (c) => `\\${c}`)}*`;
  }

  /** The caller key of a lock key, or `undefined` for any other key. */
  callerKey(lockKey: string): string | undefined {
    const head = `${this.prefix}lock:`;
    return lockKey.startsWith(head) ? lockKey.slice(head.length) : undefined;
  }
}
