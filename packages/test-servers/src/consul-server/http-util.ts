/**
 * Request and response plumbing shared by the endpoints: Go-style query parsing (`url.Values`), Consul's query
 * options (`?stale`, `?consistent`, `?index`, `?wait`), its meta headers, and JSON / plain-text responses.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { badRequest } from './errors.js';
import { parseGoDuration } from './go-duration.js';
import { encodeGoJson, type JsonOut } from './go-json.js';

/** Query parameters parsed like Go's `url.ParseQuery`: presence matters, `get` returns the first value. */
export class QueryParams {
  readonly #values = new Map<string, string[]>();

  constructor(rawQuery: string) {
    for (const part of rawQuery.split('&')) {
      if (part === '' || part.includes(';')) continue;
      const eq = part.indexOf('=');
      const rawKey = eq === -1 ? part : part.slice(0, eq);
      const rawValue = eq === -1 ? '' : part.slice(eq + 1);
      const key = queryUnescape(rawKey);
      const value = queryUnescape(rawValue);
      if (key === undefined || value === undefined) continue;
      const list = this.#values.get(key);
      if (list) list.push(value);
      else this.#values.set(key, [value]);
    }
  }

  /** True when the parameter is present, with or without a value (`?recurse`, `?recurse=`). */
  has(name: string): boolean {
    return this.#values.has(name);
  }

  /** The first value, `''` when absent. */
  get(name: string): string {
    return this.#values.get(name)?.[0] ?? '';
  }

  /** Go's `url.Values.Encode()`: keys sorted, values query-escaped. */
  encode(): string {
    const parts: string[] = [];
    for (const key of [...this.#values.keys()].sort()) {
      for (const value of this.#values.get(key) ?? [])
        parts.push(`${queryEscape(key)}=${queryEscape(value)}`);
    }
    return parts.join('&');
  }
}

function queryUnescape(s: string): string | undefined {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === '%') {
      const hex = s.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) return undefined;
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else if (ch === '+') {
      bytes.push(0x20);
    } else {
      for (const b of Buffer.from(ch, 'utf8')) bytes.push(b);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function queryEscape(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const ch = String.fromCharCode(b);
    if (/[A-Za-z0-9\-_.~]/.test(ch)) out += ch;
    else if (ch === ' ') out += '+';
    else out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** A request as the endpoints see it: body fully read, path decoded. */
export interface ConsulRequest {
  readonly method: string;
  /** The decoded path, as Go's `req.URL.Path`. */
  readonly path: string;
  readonly query: QueryParams;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** The `Content-Length` header, `undefined` for chunked bodies (Go's `ContentLength == -1`). */
  readonly contentLength: number | undefined;
  /** Aborts when the client goes away. */
  readonly signal: AbortSignal;
}

/** A response ready to be written. */
export interface ConsulResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer | string;
}

/** A JSON response, compact unless the request asked for `?pretty`. */
export function jsonResponse(
  req: ConsulRequest,
  value: JsonOut,
  headers: Record<string, string> = {},
  status = 200,
): ConsulResponse {
  return {
    status,
    headers: { ...headers, 'Content-Type': 'application/json' },
    body: encodeGoJson(value, req.query.has('pretty')),
  };
}

/** A plain-text response, as Go writes an error body. */
export function textResponse(
  status: number,
  text: string,
  headers: Record<string, string> = {},
): ConsulResponse {
  return { status, headers: { 'Content-Type': 'text/plain; charset=utf-8', ...headers }, body: text };
}

/** Consul's query options, parsed in Consul's order (consistency first, then `wait`, then `index`). */
export interface QueryOptions {
  readonly allowStale: boolean;
  readonly requireConsistent: boolean;
  readonly minIndex: number;
  /** The requested `?wait` in nanoseconds, `undefined` when absent. */
  readonly waitNs: bigint | undefined;
}

/** Parses `?stale`, `?consistent`, `?wait` and `?index`, throwing Consul's 400s. */
export function parseQueryOptions(req: ConsulRequest): QueryOptions {
  const { query } = req;
  const allowStale = query.has('stale');
  const requireConsistent = query.has('consistent');
  const maxStale = query.get('max_stale');
  let stale = allowStale;
  if (maxStale !== '') {
    let dur: bigint;
    try {
      dur = parseGoDuration(maxStale);
    } catch {
      throw badRequest(`Invalid max_stale value ${JSON.stringify(maxStale)}`);
    }
    if (dur > 0n) stale = true;
  }
  if (stale && requireConsistent)
    throw badRequest('Cannot specify ?stale with ?consistent, conflicting semantics.');
  let waitNs: bigint | undefined;
  const wait = query.get('wait');
  if (wait !== '') {
    try {
      waitNs = parseGoDuration(wait);
    } catch {
      throw badRequest('Invalid wait time');
    }
  }
  let minIndex = 0;
  const index = query.get('index');
  if (index !== '') {
    if (!/^\d+$/.test(index) || BigInt(index) >= 1n << 64n) throw badRequest('Invalid index');
    minIndex = Number(BigInt(index));
  }
  return { allowStale: stale, requireConsistent, minIndex, waitNs };
}

/** What {@link metaHeaders} reports. */
export interface QueryMeta {
  readonly index: number;
  readonly knownLeader: boolean;
  readonly lastContactMs: number;
  readonly options: QueryOptions;
  readonly filteredByAcls?: boolean;
}

/** Consul's `setMeta`: `X-Consul-Index` (never 0), `X-Consul-KnownLeader`, `X-Consul-LastContact`, ... */
export function metaHeaders(meta: QueryMeta): Record<string, string> {
  const headers: Record<string, string> = {
    'X-Consul-Index': String(Math.max(1, meta.index)),
    'X-Consul-KnownLeader': meta.knownLeader ? 'true' : 'false',
    'X-Consul-LastContact': String(Math.max(0, Math.floor(meta.lastContactMs))),
    'X-Consul-Effective-Consistency': meta.options.allowStale
      ? 'stale'
      : meta.options.requireConsistent
        ? 'consistent'
        : 'leader',
    'X-Consul-Query-Backend': 'blocking-query',
  };
  if (meta.filteredByAcls) headers['X-Consul-Results-Filtered-By-ACLs'] = 'true';
  return headers;
}

/** `X-Consul-KnownLeader` and `X-Consul-LastContact` only, as a read-only `/v1/txn` sets them. */
export function leaderHeaders(knownLeader: boolean, lastContactMs: number): Record<string, string> {
  return {
    'X-Consul-KnownLeader': knownLeader ? 'true' : 'false',
    'X-Consul-LastContact': String(Math.max(0, Math.floor(lastContactMs))),
  };
}

/** Go's `strconv.ParseUint(s, 10, 64)`, with Go's error text. */
export function parseUint64(s: string): bigint {
  if (!/^\d+$/.test(s)) throw new Error(`strconv.ParseUint: parsing ${JSON.stringify(s)}: invalid syntax`);
  const value = BigInt(s);
  if (value >= 1n << 64n)
    throw new Error(`strconv.ParseUint: parsing ${JSON.stringify(s)}: value out of range`);
  return value;
}
