import { ExponentialBackoff, noop } from 'cockatiel';
import {
  Etcd3,
  type ICompare,
  type IKeyValue,
  type IRangeResponse,
  type IRequestOp,
  type ITxnResponse,
  type Watcher,
} from 'etcd3';
import { etcdError } from './errors.js';

/** How to reach etcd. */
export interface EtcdConnection {
  endpoints: readonly string[];
  auth?: { username: string; password: string } | undefined;
  tls?: { ca?: Buffer | undefined; cert?: Buffer | undefined; key?: Buffer | undefined } | undefined;
  /** Deadline of every unary call. */
  requestTimeoutMs: number;
  /** Key prefix, for permission hints. */
  prefix: string;
}

/**
 * The few etcd calls baton makes, on the raw gRPC API of the `etcd3` client, with its retry and circuit
 * breaker policies switched off: a write is sent exactly once per call (a retried transaction whose first
 * answer was lost would report a lock taken by this very call as held by someone else), and transient
 * failures surface at once as typed errors for baton's own retry rules. Every call has a deadline.
 */
export class EtcdRpc {
  readonly client: Etcd3;
  readonly #connection: EtcdConnection;

  constructor(connection: EtcdConnection) {
    this.#connection = connection;
    const { tls } = connection;
    this.client = new Etcd3({
      hosts: [...connection.endpoints],
      ...(connection.auth ? { auth: { ...connection.auth } } : {}),
      ...(tls?.ca || tls?.cert
        ? {
            credentials: {
              // grpc-js falls back to Node's trusted roots when no CA is given.
              rootCertificate: tls.ca as Buffer,
              ...(tls.cert ? { certChain: tls.cert } : {}),
              ...(tls.key ? { privateKey: tls.key } : {}),
            },
          }
        : {}),
      dialTimeout: connection.requestTimeoutMs,
      defaultCallOptions: (context) =>
        context.isStream ? {} : { deadline: Date.now() + connection.requestTimeoutMs },
      faultHandling: {
        host: () => noop,
        global: noop,
        watchBackoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 2_000 }).next(),
      },
    });
  }

  /** Runs `call`, turning a client failure into a typed baton error about `what`. */
  async #run<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw etcdError(error, what, this.#connection.prefix);
    }
  }

  txn(what: string, compare: ICompare[], success: IRequestOp[], failure: IRequestOp[] = []) {
    return this.#run<ITxnResponse>(what, () => this.client.kv.txn({ compare, success, failure }));
  }

  range(what: string, key: Buffer, rangeEnd?: Buffer): Promise<IRangeResponse> {
    return this.#run(what, () =>
      this.client.kv.range({ key, ...(rangeEnd ? { range_end: rangeEnd } : {}), serializable: false }),
    );
  }

  /** Grants a lease; resolves its id and the TTL etcd actually granted, in seconds (it may raise it). */
  async grant(ttlSeconds: number): Promise<{ id: string; ttlSeconds: number }> {
    const response = await this.#run('grant a lease', () =>
      this.client.leaseClient.leaseGrant({ TTL: ttlSeconds }),
    );
    if (response.error) throw etcdError(new Error(response.error), 'grant a lease', this.#connection.prefix);
    return { id: response.ID, ttlSeconds: Number(response.TTL) };
  }

  /**
   * What etcd says is left of a lease, in whole seconds rounded down (etcd: the lease "will expire in under
   * TTL+1 seconds"), and the TTL it was granted or last renewed to; `null` when the lease is gone.
   */
  async timeToLive(id: string): Promise<{ ttlSeconds: number; grantedSeconds: number } | null> {
    const response = await this.#run('read a lease', () =>
      this.client.leaseClient.leaseTimeToLive({ ID: id, keys: false }),
    );
    const ttlSeconds = Number(response.TTL);
    if (!(ttlSeconds >= 0)) return null;
    return { ttlSeconds, grantedSeconds: Number(response.grantedTTL) };
  }

  async revoke(id: string): Promise<void> {
    await this.#run('revoke a lease', () => this.client.leaseClient.leaseRevoke({ ID: id }));
  }

  /**
   * One keep-alive round for `ids`, in order, on a short-lived stream: resolves the TTL etcd reports for each
   * (0 when the lease is gone). Rejects when `signal` aborts or the deadline passes.
   */
  keepAlive(ids: readonly string[], signal: AbortSignal, timeoutMs: number): Promise<number[]> {
    return this.#run('renew the session lease', async () => {
      const stream = await this.client.leaseClient.leaseKeepAlive({ deadline: Date.now() + timeoutMs });
      return new Promise<number[]>((resolve, reject) => {
        const ttls = new Map<string, number>();
        let settled = false;
        const finish = (error?: unknown) => {
          if (settled) return;
          settled = true;
          signal.removeEventListener('abort', onAbort);
          if (error === undefined) {
            stream.end();
            resolve(ids.map((id) => ttls.get(id) ?? 0));
          } else {
            stream.cancel();
            reject(error);
          }
        };
        const onAbort = () => finish(signal.reason ?? new Error('keep-alive aborted'));
        signal.addEventListener('abort', onAbort, { once: true });
        stream.on('data', (response) => {
          ttls.set(String(response.ID), Number(response.TTL));
          if (ids.every((id) => ttls.has(id))) finish();
        });
        stream.on('error', (error) => finish(error));
        stream.on('end', () => finish(new Error('keep-alive stream ended early')));
        for (const id of ids) stream.write({ ID: id });
      });
    });
  }

  /** A watcher on one key from `startRevision`. */
  watchKey(key: Buffer, startRevision: string): Promise<Watcher> {
    return this.#run('watch a key', () => this.client.watch().key(key).startRevision(startRevision).create());
  }

  close(): void {
    this.client.close();
  }
}

/** A key's value as baton publishes it: `undefined` for an empty value. */
export function publishedValue(kv: IKeyValue): string | undefined {
  return kv.value.length === 0 ? undefined : kv.value.toString('utf8');
}

/** A revision (int64 as a decimal string) as a number, when it is a safe integer. */
export function revision(text: string | number): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0)
    throw new RangeError(`revision ${text} is not a safe integer`);
  return value;
}

/** A lease id as etcdctl shows it (hexadecimal). */
export function leaseHex(id: string): string {
  return BigInt(id).toString(16);
}
