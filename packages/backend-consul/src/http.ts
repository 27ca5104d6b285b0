import http from 'node:http';
import https from 'node:https';
import { AbortedError, BatonError, formatDuration, ProtocolError, parseDuration } from '@baton/core';
import { bodyText, ConsulHttpError, ConsulTimeoutError, httpStatusOf, toBatonError } from './errors.js';

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
    | 'get-tree'
    | 'delete'
    | 'check-session'
    | 'check-index'
    | 'check-not-exists'
    | 'cas'
    | 'delete-cas'
    | 'delete-tree';
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
  /** Where the token came from, for error messages (see `ErrorContext.tokenSource`). */
  tokenSource?: string | undefined;
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

/** Session settings sent to `PUT /v1/session/create`. */
export interface SessionCreateRequest {
  name: string;
  ttlMs: number;
  lockDelayMs: number;
  behavior: 'release' | 'delete';
  checks: readonly string[];
}

/** A query string value; `true` sends the bare flag (`?recurse`), `undefined` leaves the parameter out. */
type QueryValue = string | number | true | undefined;

/** One answer: status, body text and the `X-Consul-Index` header. */
interface Answer {
  status: number;
  text: string;
  index: string | undefined;
}

/**
 * Everything baton says to Consul, over one keep-alive agent with plain `node:http(s)` requests: the token
 * goes in `X-Consul-Token` (never in a URL, never into an error), the datacenter in `?dc=`. Every failure
 * comes out as a `BatonError` with the original as `cause`; aborting `signal` cancels the request in flight.
 */
export class ConsulHttp {
  readonly #agent: http.Agent;
  readonly #options: ConsulHttpOptions;
  readonly #secure: boolean;
  readonly #hostname: string;
  readonly #port: number;

  constructor(options: ConsulHttpOptions) {
    this.#options = options;
    this.#secure = options.address.protocol === 'https:';
    this.#hostname = options.address.hostname.replace(/^\[(.*)\]$/, '$1');
    this.#port = Number(options.address.port) || (this.#secure ? 443 : 80);
    this.#agent = this.#secure
      ? new https.Agent({
          keepAlive: true,
          ...(options.ca ? { ca: options.ca } : {}),
          ...(options.cert ? { cert: options.cert } : {}),
          ...(options.key ? { key: options.key } : {}),
          ...(options.servername ? { servername: options.servername } : {}),
        })
      : new http.Agent({ keepAlive: true });
  }

  /** Creates a session; resolves its id. */
  async createSession(request: SessionCreateRequest, options: CallOptions = {}): Promise<string> {
    const operation = 'create a session';
    const body = JSON.stringify({
      Name: request.name,
      TTL: formatDuration(request.ttlMs),
      // "0s", not 0 or nothing: Consul would apply its 15 s default.
      LockDelay: formatDuration(request.lockDelayMs),
      Behavior: request.behavior,
      // Always sent: without it Consul binds the session to the node's serfHealth check.
      Checks: [...request.checks],
    });
    const text = await this.#ok(operation, 'PUT', '/v1/session/create', {}, body, options);
    const id = (parseJson(text, operation) as { ID?: unknown } | null)?.ID;
    if (typeof id !== 'string' || id === '') {
      throw new ProtocolError(`Consul: session create answered without an ID: ${bodyText(text, 200)}`, {
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
    const operation = `renew session ${id}`;
    const path = `/v1/session/renew/${encodeURIComponent(id)}`;
    return parseJson(await this.#ok(operation, 'PUT', path, {}, '', options), operation);
  }

  /**
   * The TTL of a session as `GET /v1/session/info/<id>` reports it, in ms; `null` when Consul no longer
   * knows the session, `undefined` when it has no TTL or one this client cannot parse.
   */
  async sessionTtlMs(id: string, options: ReadOptions = {}): Promise<number | null | undefined> {
    const operation = `read session ${id}`;
    const path = `/v1/session/info/${encodeURIComponent(id)}`;
    const query = { consistent: options.consistent || undefined };
    const body = parseJson(await this.#ok(operation, 'GET', path, query, undefined, options), operation);
    if (!Array.isArray(body) || body.length === 0) return null;
    const ttl = parseDuration((body[0] as { TTL?: unknown } | null)?.TTL);
    return ttl !== undefined && ttl > 0 ? ttl : undefined;
  }

  /** Destroys a session (idempotent at Consul). */
  async destroySession(id: string, options: CallOptions = {}): Promise<void> {
    const operation = `destroy session ${id}`;
    await this.#ok(operation, 'PUT', `/v1/session/destroy/${encodeURIComponent(id)}`, {}, '', options);
  }

  /** Reads one key. `entry` is `undefined` when it does not exist; `index` is Consul's `X-Consul-Index`. */
  async getKey(
    key: string,
    options: ReadOptions = {},
  ): Promise<{ entry: KvEntry | undefined; index: number }> {
    const { entries, index } = await this.#read(`read '${key}'`, key, false, options);
    if (entries === undefined || entries.length === 0) return { entry: undefined, index };
    const entry = entries[0];
    if (entries.length !== 1 || entry?.Key !== key) {
      throw new ProtocolError(`Consul: unexpected answer reading '${key}': ${JSON.stringify(entries)}`, {
        backend: 'consul',
      });
    }
    return { entry, index };
  }

  /** Reads every key under `prefix` (`?recurse`). */
  async listKeys(prefix: string, options: ReadOptions = {}): Promise<{ entries: KvEntry[]; index: number }> {
    const { entries, index } = await this.#read(`list '${prefix}'`, prefix, true, options);
    return { entries: entries ?? [], index };
  }

  /** `PUT /v1/kv/<key>` with at most one of `acquire`, `release`, `cas`. Resolves Consul's boolean. */
  async putKey(
    key: string,
    value: string,
    params: { flags?: number; acquire?: string; release?: string; cas?: number },
    options: CallOptions = {},
  ): Promise<boolean> {
    const operation = `write '${key}'`;
    return expectBoolean(await this.#ok(operation, 'PUT', kvPath(key), params, value, options), operation);
  }

  /** `DELETE /v1/kv/<key>`, optionally `?cas=<index>`. Resolves Consul's boolean. */
  async deleteKey(key: string, params: { cas?: number } = {}, options: CallOptions = {}): Promise<boolean> {
    const operation = `delete '${key}'`;
    return expectBoolean(
      await this.#ok(operation, 'DELETE', kvPath(key), params, undefined, options),
      operation,
    );
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
    const { status, text } = await this.#send(operation, 'PUT', '/v1/txn', {}, payload, options);
    if (status !== 200 && status !== 409) throw this.#fail(new ConsulHttpError(status, text), operation);
    const parsed = parseJson(text, operation) as { Results?: unknown; Errors?: unknown } | null;
    if (status === 409) {
      const errors = Array.isArray(parsed?.Errors) ? parsed.Errors.filter(isTxnError) : [];
      return { committed: false, errors };
    }
    const results = Array.isArray(parsed?.Results) ? parsed.Results : [];
    const entries: KvEntry[] = [];
    for (const result of results) {
      const kv = (result as { KV?: unknown } | null)?.KV;
      if (!isWireEntry(kv)) {
        throw new ProtocolError(`Consul: ${operation}: unexpected txn result ${JSON.stringify(result)}`, {
          backend: 'consul',
        });
      }
      entries.push(decodeEntry(kv));
    }
    return { committed: true, results: entries };
  }

  /** Closes pooled connections. Requests still in flight fail. */
  close(): void {
    this.#agent.destroy();
  }

  /** The request deadline for blocking reads: the wait plus Consul's jitter (wait/16) plus the usual deadline. */
  blockingTimeoutMs(waitMs: number): number {
    return waitMs + Math.ceil(waitMs / 16) + this.#options.requestTimeoutMs;
  }

  async #read(
    operation: string,
    key: string,
    recurse: boolean,
    options: ReadOptions,
  ): Promise<{ entries: KvEntry[] | undefined; index: number }> {
    const blocking = options.index !== undefined && options.index > 0;
    const waitMs = options.waitMs ?? 60_000;
    const timeoutMs = options.timeoutMs ?? (blocking ? this.blockingTimeoutMs(waitMs) : undefined);
    const query: Record<string, QueryValue> = {
      recurse: recurse || undefined,
      consistent: options.consistent || undefined,
      index: blocking ? options.index : undefined,
      wait: blocking ? formatDuration(waitMs) : undefined,
    };
    const answer = await this.#send(operation, 'GET', kvPath(key), query, undefined, {
      signal: options.signal,
      timeoutMs,
    });
    const parsedIndex = Number(answer.index);
    const index = Number.isSafeInteger(parsedIndex) && parsedIndex > 0 ? parsedIndex : 1;
    // 404: no such key (or nothing under the prefix); the index still counts for blocking queries.
    if (answer.status === 404) return { entries: undefined, index };
    if (answer.status !== 200) throw this.#fail(new ConsulHttpError(answer.status, answer.text), operation);
    const body = parseJson(answer.text, operation);
    if (!Array.isArray(body) || !body.every(isWireEntry)) {
      throw new ProtocolError(`Consul: unexpected answer to ${operation}: ${bodyText(answer.text, 200)}`, {
        backend: 'consul',
      });
    }
    return { entries: body.map(decodeEntry), index };
  }

  /** One request that must answer 200; resolves the body text, rejects (as a `BatonError`) otherwise. */
  async #ok(
    operation: string,
    method: string,
    path: string,
    query: Record<string, QueryValue>,
    body: string | undefined,
    options: CallOptions,
  ): Promise<string> {
    const answer = await this.#send(operation, method, path, query, body, options);
    if (answer.status !== 200) throw this.#fail(new ConsulHttpError(answer.status, answer.text), operation);
    return answer.text;
  }

  #fail(error: unknown, operation: string, signal?: AbortSignal): BatonError {
    if (signal?.aborted && !httpStatusOf(error)) return abortError(signal, operation);
    return toBatonError(error, {
      operation,
      prefix: this.#options.prefix,
      tokenSource: this.#options.token ? this.#options.tokenSource : undefined,
    });
  }

  /** One request; transport failures reject as `BatonError`s, any HTTP status resolves. */
  async #send(
    operation: string,
    method: string,
    path: string,
    query: Record<string, QueryValue>,
    body: string | undefined,
    options: CallOptions,
  ): Promise<Answer> {
    const { signal } = options;
    if (signal?.aborted) throw abortError(signal, operation);
    try {
      return await this.#request(
        method,
        path + queryString({ ...query, dc: this.#options.datacenter }),
        body,
        options,
      );
    } catch (error) {
      throw this.#fail(error, operation, signal);
    }
  }

  #request(method: string, path: string, body: string | undefined, options: CallOptions): Promise<Answer> {
    const { signal } = options;
    const timeoutMs = options.timeoutMs ?? this.#options.requestTimeoutMs;
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = {};
      if (body !== undefined) {
        headers['content-type'] = path.startsWith('/v1/kv/')
          ? 'text/plain; charset=utf-8'
          : 'application/json';
        headers['content-length'] = Buffer.byteLength(body);
      }
      if (this.#options.token) headers['x-consul-token'] = this.#options.token;
      const request = (this.#secure ? https : http).request({
        agent: this.#agent,
        hostname: this.#hostname,
        port: this.#port,
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
          const header = response.headers['x-consul-index'];
          resolve({
            status: response.statusCode ?? 0,
            text: Buffer.concat(chunks).toString('utf8'),
            index: Array.isArray(header) ? header[0] : header,
          });
        });
      });
      request.end(body);
    });
  }
}

/** `/v1/kv/<key>`, the key encoded as one path segment (Consul decodes `%2F` back to `/`). */
function kvPath(key: string): string {
  return `/v1/kv/${encodeURIComponent(key)}`;
}

function queryString(query: Record<string, QueryValue>): string {
  const parts: string[] = [];
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined) continue;
    parts.push(value === true ? name : `${name}=${encodeURIComponent(String(value))}`);
  }
  return parts.length === 0 ? '' : `?${parts.join('&')}`;
}

function parseJson(text: string, operation: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new ProtocolError(`Consul: ${operation}: unreadable answer: ${bodyText(text, 200)}`, {
      backend: 'consul',
      cause,
    });
  }
}

function decodeEntry(kv: KvEntry & { Value: string | null | undefined }): KvEntry {
  return { ...kv, Value: kv.Value === null || kv.Value === undefined ? null : decodeBase64(kv.Value) };
}

function abortError(signal: AbortSignal, operation: string): BatonError {
  const reason: unknown = signal.reason;
  if (reason instanceof BatonError) return reason;
  return new AbortedError(`Consul: ${operation} aborted`, { cause: reason, backend: 'consul' });
}

function expectBoolean(text: string, operation: string): boolean {
  const answer = text.trim();
  if (answer === 'true' || answer === 'false') return answer === 'true';
  throw new ProtocolError(
    `Consul: ${operation}: expected true or false, got ${JSON.stringify(bodyText(text, 200))}`,
    {
      backend: 'consul',
    },
  );
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
