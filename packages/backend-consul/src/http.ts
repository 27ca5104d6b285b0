import { EventEmitter } from 'node:events';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { AbortedError, BatonError, formatDuration, ProtocolError } from '@baton/core';
import Consul from 'consul';
import { ConsulHttpError, ConsulTimeoutError, httpStatusOf, toBatonError } from './errors.js';

/** A KV entry as Consul returns it. `Value` is decoded text (or `null`). */
export interface KvEntry {
  Key: string;
  Value: string | null;
  Flags: number;
  Session?: string;
  LockIndex: number;
  CreateIndex: number;
  ModifyIndex: number;
}

/** One operation of a `/v1/txn` request (the KV verbs baton uses). */
export interface TxnKvOp {
  Verb:
    | 'lock'
    | 'unlock'
    | 'get'
    | 'check-session'
    | 'check-index'
    | 'check-not-exists'
    | 'cas'
    | 'delete-cas';
  Key: string;
  /** Text; encoded to base64 on the wire. */
  Value?: string | undefined;
  Flags?: number | undefined;
  Index?: number | undefined;
  Session?: string | undefined;
}

/** One rolled-back operation: `OpIndex` points into the request's operations. */
export interface TxnError {
  OpIndex: number;
  What: string;
}

export type TxnOutcome = { committed: true; results: KvEntry[] } | { committed: false; errors: TxnError[] };

/** Options of {@link ConsulHttp}. */
export interface ConsulHttpOptions {
  /** `http(s)://host:port` of the agent. */
  address: URL;
  /** ACL token, sent as `X-Consul-Token`. */
  token?: string | undefined;
  /** TLS: CA bundle, client certificate and key (PEM), and the server name to verify. */
  ca?: string | Buffer | undefined;
  cert?: string | Buffer | undefined;
  key?: string | Buffer | undefined;
  servername?: string | undefined;
  datacenter?: string | undefined;
  /** Deadline of every request that is not a blocking query. */
  requestTimeoutMs: number;
  /** The key prefix, for error messages that name the ACL rule. */
  prefix: string;
}

/** Per-request options. */
export interface CallOptions {
  signal?: AbortSignal | undefined;
  /** Overrides the default request deadline. */
  timeoutMs?: number | undefined;
}

/** Options of a KV read. */
export interface ReadOptions extends CallOptions {
  /** `?consistent`: the leader confirms it still leads before answering. */
  consistent?: boolean;
  /** Blocking query: return when the index exceeds this, or after `waitMs`. */
  index?: number | undefined;
  waitMs?: number | undefined;
}

// The part of the npm client we call, typed as it behaves at runtime (its bundled types omit `ctx` and
// `timeout`, and its txn types do not match the wire format).
interface PapiContext extends EventEmitter {
  includeResponse?: boolean;
}
interface CommonRequest {
  ctx: PapiContext;
  timeout: number;
}
interface ConsulClientApi {
  session: {
    create(
      request: {
        name?: string;
        ttl?: string;
        lockdelay?: string;
        behavior?: string;
        checks?: string[];
      } & CommonRequest,
    ): Promise<unknown>;
    renew(request: { id: string } & CommonRequest): Promise<unknown>;
    destroy(request: { id: string } & CommonRequest): Promise<unknown>;
  };
  kv: {
    get(
      request: {
        key: string;
        recurse?: boolean;
        consistent?: boolean;
        index?: string;
        wait?: string;
      } & CommonRequest,
    ): Promise<unknown>;
    set(
      request: {
        key: string;
        value: string;
        flags?: number;
        acquire?: string;
        release?: string;
        cas?: number;
      } & CommonRequest,
    ): Promise<unknown>;
    del(request: { key: string; cas?: number } & CommonRequest): Promise<unknown>;
  };
  destroy(): void;
}

/** Session settings sent to `PUT /v1/session/create`. */
export interface SessionCreateRequest {
  name: string;
  ttlMs: number;
  lockDelayMs: number;
  behavior: 'release' | 'delete';
  checks: readonly string[];
}

/**
 * Everything baton says to Consul. Sessions and plain KV requests go through the npm `consul` client;
 * `/v1/txn` (acquire + fence in one round trip) is sent directly over the same keep-alive agent, with the
 * same token, TLS settings and datacenter. Every failure comes out as a `BatonError` with the original as
 * `cause`; aborting `signal` cancels the request in flight.
 */
export class ConsulHttp {
  readonly #client: ConsulClientApi;
  readonly #agent: http.Agent;
  readonly #options: ConsulHttpOptions;
  readonly #secure: boolean;

  constructor(options: ConsulHttpOptions) {
    this.#options = options;
    this.#secure = options.address.protocol === 'https:';
    this.#agent = this.#secure
      ? new https.Agent({
          keepAlive: true,
          ...(options.ca ? { ca: options.ca } : {}),
          ...(options.cert ? { cert: options.cert } : {}),
          ...(options.key ? { key: options.key } : {}),
          ...(options.servername ? { servername: options.servername } : {}),
        })
      : new http.Agent({ keepAlive: true });
    const defaults: Record<string, string> = {};
    if (options.token) defaults.token = options.token;
    if (options.datacenter) defaults.dc = options.datacenter;
    this.#client = new Consul({
      baseUrl: `${options.address.origin}/v1`,
      agent: this.#agent,
      defaults,
    } as ConstructorParameters<typeof Consul>[0]) as unknown as ConsulClientApi;
  }

  /** Creates a session; resolves its id. */
  async createSession(request: SessionCreateRequest, options: CallOptions = {}): Promise<string> {
    const body = await this.#call('create a session', options, (common) =>
      this.#client.session.create({
        name: request.name,
        ttl: formatDuration(request.ttlMs),
        // "0s", not 0: the client drops falsy values and Consul would apply its 15 s default.
        lockdelay: formatDuration(request.lockDelayMs),
        behavior: request.behavior,
        checks: [...request.checks],
        ...common,
      }),
    );
    const id = (body as { ID?: unknown } | undefined)?.ID;
    if (typeof id !== 'string' || id === '') {
      throw new ProtocolError(`Consul: session create answered without an ID: ${JSON.stringify(body)}`, {
        backend: 'consul',
      });
    }
    return id;
  }

  /**
   * Renews a session; resolves Consul's answer (the session, in a one-element array). A 404 (unknown or
   * expired session) rejects with an error whose `cause` carries the status, for the caller to judge.
   */
  async renewSession(id: string, options: CallOptions = {}): Promise<unknown> {
    return this.#call(`renew session ${id}`, options, (common) =>
      this.#client.session.renew({ id, ...common }),
    );
  }

  /** Destroys a session (idempotent at Consul). */
  async destroySession(id: string, options: CallOptions = {}): Promise<void> {
    await this.#call(`destroy session ${id}`, options, (common) =>
      this.#client.session.destroy({ id, ...common }),
    );
  }

  /** Reads one key. `entry` is `undefined` when it does not exist; `index` is Consul's `X-Consul-Index`. */
  async getKey(
    key: string,
    options: ReadOptions = {},
  ): Promise<{ entry: KvEntry | undefined; index: number }> {
    const { body, index } = await this.#read(`read '${key}'`, key, false, options);
    if (body === undefined) return { entry: undefined, index };
    // The client unwraps the one-element array of a single-key read.
    const entry = Array.isArray(body) && body.length === 1 ? body[0] : body;
    if (!isKvEntry(entry) || entry.Key !== key) {
      throw new ProtocolError(`Consul: unexpected answer reading '${key}': ${JSON.stringify(body)}`, {
        backend: 'consul',
      });
    }
    return { entry, index };
  }

  /** Reads every key under `prefix` (`?recurse`). */
  async listKeys(prefix: string, options: ReadOptions = {}): Promise<{ entries: KvEntry[]; index: number }> {
    const { body, index } = await this.#read(`list '${prefix}'`, prefix, true, options);
    if (body === undefined) return { entries: [], index };
    if (!Array.isArray(body) || !body.every(isKvEntry)) {
      throw new ProtocolError(`Consul: unexpected answer listing '${prefix}'`, { backend: 'consul' });
    }
    return { entries: body, index };
  }

  /** `PUT /v1/kv/<key>` with at most one of `acquire`, `release`, `cas`. Resolves Consul's boolean. */
  async putKey(
    key: string,
    value: string,
    params: { flags?: number; acquire?: string; release?: string; cas?: number },
    options: CallOptions = {},
  ): Promise<boolean> {
    const answer = await this.#call(
      `write '${key}'`,
      options,
      (common) => this.#client.kv.set({ key, value, ...params, ...common }),
      true,
    );
    return expectBoolean(bodyOf(answer), `write '${key}'`);
  }

  /** `DELETE /v1/kv/<key>`, optionally `?cas=<index>`. Resolves Consul's boolean. */
  async deleteKey(key: string, params: { cas?: number } = {}, options: CallOptions = {}): Promise<boolean> {
    const answer = await this.#call(
      `delete '${key}'`,
      options,
      (common) => this.#client.kv.del({ key, ...params, ...common }),
      true,
    );
    return expectBoolean(bodyOf(answer), `delete '${key}'`);
  }

  /**
   * `PUT /v1/txn`: commits all operations or none. A rollback (HTTP 409) resolves with Consul's per-operation
   * errors rather than rejecting; transport failures and other statuses reject.
   */
  async txn(operation: string, ops: readonly TxnKvOp[], options: CallOptions = {}): Promise<TxnOutcome> {
    const payload = JSON.stringify(
      ops.map((op) => ({
        KV: {
          Verb: op.Verb,
          Key: op.Key,
          ...(op.Value !== undefined ? { Value: Buffer.from(op.Value, 'utf8').toString('base64') } : {}),
          ...(op.Flags ? { Flags: op.Flags } : {}),
          ...(op.Index !== undefined ? { Index: op.Index } : {}),
          ...(op.Session !== undefined ? { Session: op.Session } : {}),
        },
      })),
    );
    const query = this.#options.datacenter ? `?dc=${encodeURIComponent(this.#options.datacenter)}` : '';
    let status: number;
    let text: string;
    try {
      ({ status, text } = await this.#raw('PUT', `/v1/txn${query}`, payload, options));
    } catch (error) {
      throw this.#fail(error, operation, options.signal);
    }
    if (status !== 200 && status !== 409) throw this.#fail(new ConsulHttpError(status, text), operation);
    let parsed: { Results?: unknown; Errors?: unknown };
    try {
      parsed = JSON.parse(text) as { Results?: unknown; Errors?: unknown };
    } catch (cause) {
      throw new ProtocolError(`Consul: ${operation}: unreadable txn answer: ${text.slice(0, 200)}`, {
        backend: 'consul',
        cause,
      });
    }
    if (status === 409) {
      const errors = Array.isArray(parsed.Errors) ? parsed.Errors.filter(isTxnError) : [];
      return { committed: false, errors };
    }
    const results = Array.isArray(parsed.Results) ? parsed.Results : [];
    const entries: KvEntry[] = [];
    for (const result of results) {
      const kv = (result as { KV?: unknown } | null)?.KV;
      if (!isWireEntry(kv)) {
        throw new ProtocolError(`Consul: ${operation}: unexpected txn result ${JSON.stringify(result)}`, {
          backend: 'consul',
        });
      }
      entries.push({
        ...kv,
        Value: kv.Value === null || kv.Value === undefined ? null : decodeBase64(kv.Value),
      });
    }
    return { committed: true, results: entries };
  }

  /** Closes pooled connections. Requests still in flight fail. */
  close(): void {
    this.#client.destroy();
    this.#agent.destroy();
  }

  /** The request deadline for blocking reads: the wait plus Consul's jitter (wait/16) plus the usual deadline. */
  blockingTimeoutMs(waitMs: number): number {
    return waitMs + Math.ceil(waitMs / 16) + this.#options.requestTimeoutMs;
  }

  async #read(
    what: string,
    key: string,
    recurse: boolean,
    options: ReadOptions,
  ): Promise<{ body: unknown; index: number }> {
    const blocking = options.index !== undefined && options.index > 0;
    const waitMs = options.waitMs ?? 60_000;
    const timeoutMs = options.timeoutMs ?? (blocking ? this.blockingTimeoutMs(waitMs) : undefined);
    const answer = await this.#call(
      what,
      { signal: options.signal, timeoutMs },
      (common) =>
        this.#client.kv.get({
          key,
          ...(recurse ? { recurse: true } : {}),
          ...(options.consistent ? { consistent: true } : {}),
          ...(blocking ? { index: String(options.index), wait: formatDuration(waitMs) } : {}),
          ...common,
        }),
      true,
    );
    const [res, body] = answer as [IncomingMessage, unknown];
    const header = res.headers['x-consul-index'];
    const index = Number(Array.isArray(header) ? header[0] : header);
    return { body, index: Number.isSafeInteger(index) && index > 0 ? index : 1 };
  }

  async #call<T>(
    operation: string,
    options: CallOptions,
    run: (common: CommonRequest) => Promise<T>,
    includeResponse = false,
  ): Promise<T> {
    const { signal } = options;
    if (signal?.aborted) throw abortError(signal, operation);
    const ctx: PapiContext = new EventEmitter();
    if (includeResponse) ctx.includeResponse = true;
    const onAbort = () => ctx.emit('cancel');
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await run({ ctx, timeout: options.timeoutMs ?? this.#options.requestTimeoutMs });
    } catch (error) {
      throw this.#fail(error, operation, signal);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  #fail(error: unknown, operation: string, signal?: AbortSignal): BatonError {
    if (signal?.aborted && !httpStatusOf(error)) return abortError(signal, operation);
    return toBatonError(error, { operation, prefix: this.#options.prefix });
  }

  #raw(
    method: string,
    path: string,
    body: string,
    options: CallOptions,
  ): Promise<{ status: number; text: string }> {
    const { signal } = options;
    const timeoutMs = options.timeoutMs ?? this.#options.requestTimeoutMs;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const headers: Record<string, string | number> = {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
      };
      if (this.#options.token) headers['x-consul-token'] = this.#options.token;
      const request = (this.#secure ? https : http).request({
        agent: this.#agent,
        hostname: this.#options.address.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: this.#options.address.port || (this.#secure ? 443 : 80),
        method,
        path,
        headers,
      });
      const timer = setTimeout(() => request.destroy(new ConsulTimeoutError(timeoutMs)), timeoutMs);
      const onAbort = () =>
        request.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      request.on('error', (error) => {
        done();
        reject(error);
      });
      request.on('response', (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', (error) => {
          done();
          reject(error);
        });
        response.on('end', () => {
          done();
          resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
        });
      });
      request.end(body);
    });
  }
}

function abortError(signal: AbortSignal, operation: string): BatonError {
  const reason: unknown = signal.reason;
  if (reason instanceof BatonError) return reason;
  return new AbortedError(`Consul: ${operation} aborted`, { cause: reason, backend: 'consul' });
}

/**
 * The decoded body of a call made with the response included. Without the response, the consul client
 * resolves a `false` body as `undefined` (so Consul's "no" to `?release=` or `?cas=` would look like garbage).
 */
function bodyOf(answer: unknown): unknown {
  return (answer as [IncomingMessage, unknown])[1];
}

function expectBoolean(body: unknown, operation: string): boolean {
  if (typeof body === 'boolean') return body;
  if (body === 'true' || body === 'false') return body === 'true';
  throw new ProtocolError(`Consul: ${operation}: expected true or false, got ${JSON.stringify(body)}`, {
    backend: 'consul',
  });
}

function decodeBase64(value: string): string {
  return Buffer.from(value, 'base64').toString('utf8');
}

function isKvEntry(value: unknown): value is KvEntry {
  if (typeof value !== 'object' || value === null) return false;
  const entry = value as Record<string, unknown>;
  return (
    typeof entry.Key === 'string' &&
    typeof entry.ModifyIndex === 'number' &&
    typeof entry.CreateIndex === 'number' &&
    (entry.Session === undefined || entry.Session === null || typeof entry.Session === 'string')
  );
}

function isWireEntry(value: unknown): value is KvEntry & { Value: string | null | undefined } {
  return (
    isKvEntry(value) && ((value as { Value?: unknown }).Value == null || typeof value.Value === 'string')
  );
}

function isTxnError(value: unknown): value is TxnError {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as TxnError).OpIndex === 'number' &&
    typeof (value as TxnError).What === 'string'
  );
}
