/**
 * `/v1/kv/:key` (`agent/kvs_endpoint.go`): GET single / `?recurse` / `?keys` / `?raw` with blocking queries,
 * PUT with `?flags`, `?cas`, `?acquire`, `?release`, DELETE with `?recurse` and `?cas`.
 */

import type { KvWriteOp } from './agent.js';
import type { EndpointContext } from './endpoint-context.js';
import { badRequest, ConsulHttpError, PERMISSION_DENIED, rpcError } from './errors.js';
import type { JsonOut } from './go-json.js';
import {
  type ConsulRequest,
  type ConsulResponse,
  jsonResponse,
  parseQueryOptions,
  parseUint64,
  type QueryOptions,
} from './http-util.js';
import type { DirEntry, StateStore } from './state.js';

/** Consul's default `kv_max_value_size` (512 KiB). */
export const KV_MAX_VALUE_SIZE = 512 * 1024;

const SUSPICIOUS_EXTENSIONS = [
  '.js',
  '.css',
  '.html',
  '.htm',
  '.xml',
  '.json',
  '.txt',
  '.log',
  '.php',
  '.asp',
  '.jsp',
  '.cgi',
  '.pl',
  '.py',
  '.rb',
  '.sh',
  '.exe',
  '.dll',
  '.bat',
  '.cmd',
  '.com',
  '.scr',
  '.vbs',
  '.pdf',
  '.doc',
  '.docx',
  '.xls',
  '.xlsx',
  '.ppt',
  '.pptx',
  '.zip',
  '.rar',
  '.tar',
  '.gz',
  '.7z',
  '.bz2',
  '.jpg',
  '.jpeg',
  '.png',
  '.gif',
  '.svg',
  '.ico',
  '.bmp',
  '.mp3',
  '.mp4',
  '.avi',
  '.mov',
  '.wmv',
  '.flv',
  '.swf',
  '.woff',
  '.woff2',
  '.ttf',
  '.eot',
  '.otf',
];

/**
 * Newer Consul's `validateKVKey`: only `[A-Za-z0-9,-_./]`, no leading `/`, no `../`, and no file extension a
 * proxy might cache. Returns the 400 reason, or `undefined` for a valid key.
 */
export function kvKeyError(key: string): string | undefined {
  if (key === '') return 'key cannot be empty';
  if (key.startsWith('/')) return "key must not begin with a '/'";
  let offset = 0;
  for (const ch of key) {
    if (!/[A-Za-z0-9,\-_./]/.test(ch)) {
      return `key contains invalid character '${ch}' at position ${offset}. Only alphanumeric characters and ,-_./ are allowed`;
    }
    offset += Buffer.byteLength(ch, 'utf8');
  }
  if (key.includes('../') || key.includes('..\\')) return 'key contains path traversal sequence';
  const lower = key.toLowerCase();
  const ext = SUSPICIOUS_EXTENSIONS.find((e) => lower.endsWith(e));
  if (ext) return `key contains suspicious file extension '${ext}' that may be cached by proxies`;
  return undefined;
}

/** A KV entry as Consul's JSON shows it. */
export function dirEntryJson(entry: DirEntry): JsonOut {
  return {
    LockIndex: entry.lockIndex,
    Key: entry.key,
    Flags: entry.flags,
    Value: entry.value === null ? null : entry.value.toString('base64'),
    Session: entry.session === '' ? undefined : entry.session,
    CreateIndex: entry.createIndex,
    ModifyIndex: entry.modifyIndex,
  };
}

/** The index of a prefix listing (`kvsListTxn`): entries and tombstones under the prefix, else the table. */
export function kvListIndex(store: StateStore, prefix: string, entries: readonly DirEntry[]): number {
  let index = 0;
  for (const entry of entries) index = Math.max(index, entry.modifyIndex);
  if (prefix !== '') index = Math.max(index, store.graveyardMaxIndex(prefix));
  else index = store.kvsMaxIndex();
  return index !== 0 ? index : store.kvsMaxIndex();
}

function permissionDenied(): ConsulHttpError {
  return new ConsulHttpError(403, PERMISSION_DENIED);
}

function conflictingFlags(req: ConsulRequest, ...flags: string[]): void {
  if (flags.filter((flag) => req.query.has(flag)).length > 1) {
    throw badRequest(`Conflicting flags: ${req.query.encode()}\n`);
  }
}

function uint64Param(req: ConsulRequest, name: string): bigint {
  try {
    return parseUint64(req.query.get(name));
  } catch (error) {
    throw rpcError((error as Error).message);
  }
}

/** Handles every method of `/v1/kv/`. */
export async function kvEndpoint(ctx: EndpointContext): Promise<ConsulResponse> {
  const { req } = ctx;
  const options = parseQueryOptions(req);
  if (req.path.includes('../') || req.path.includes('..\\')) {
    throw badRequest('URL path contains invalid traversal sequence');
  }
  if (/%2e%2e%2f|%2e%2e\/|\.\.%2f|%2e%2e%5c|%252e%252e%252f/.test(req.path)) {
    throw badRequest('URL path contains encoded traversal sequence');
  }
  const key = req.path.startsWith('/v1/kv/') ? req.path.slice('/v1/kv/'.length) : '';
  if (key !== '') {
    const reason = kvKeyError(key);
    if (reason) throw badRequest(reason);
  }
  switch (req.method) {
    case 'GET':
      return req.query.has('keys') ? kvKeys(ctx, key, options) : kvGet(ctx, key, options);
    case 'PUT':
      return kvPut(ctx, key);
    default:
      return kvDelete(ctx, key);
  }
}

async function kvGet(ctx: EndpointContext, key: string, options: QueryOptions): Promise<ConsulResponse> {
  const { req, agent } = ctx;
  const { store } = agent;
  const recurse = req.query.has('recurse');
  if (!recurse && key === '') throw badRequest('Missing key name');
  const authz = ctx.rpc({ allowStale: options.allowStale });

  if (!recurse) {
    if (authz === 'anonymous') throw permissionDenied();
    const result = await ctx.blocking(['kvs', 'tombstones'], options, () => {
      const entry = store.kvGet(key);
      return entry
        ? { index: entry.modifyIndex, entry }
        : { index: store.kvsMaxIndex(), notFound: true, entry: undefined };
    });
    const headers = ctx.meta(result.index, options);
    if (!result.entry) return { status: 404, headers, body: '' };
    if (req.query.has('raw')) {
      const body = result.entry.value ?? Buffer.alloc(0);
      return {
        status: 200,
        headers: {
          ...headers,
          'Content-Type': 'text/plain',
          'X-Content-Type-Options': 'nosniff',
          'Content-Security-Policy': 'sandbox',
        },
        body,
      };
    }
    return jsonResponse(req, [dirEntryJson(result.entry)], headers);
  }

  const result = await ctx.blocking(['kvs', 'tombstones'], options, () => {
    const all = store.kvList(key);
    const visible = authz === 'anonymous' ? [] : all;
    return { index: kvListIndex(store, key, all), entries: visible, filtered: visible.length !== all.length };
  });
  const headers = ctx.meta(result.index, options, result.filtered);
  if (result.entries.length === 0) return { status: 404, headers, body: '' };
  return jsonResponse(req, result.entries.map(dirEntryJson), headers);
}

async function kvKeys(ctx: EndpointContext, prefix: string, options: QueryOptions): Promise<ConsulResponse> {
  const { req, agent } = ctx;
  const { store } = agent;
  // Both spellings are accepted (a historic typo); the correct one wins.
  let separator = '';
  if (req.query.has('seperator')) separator = req.query.get('seperator');
  if (req.query.has('separator')) separator = req.query.get('separator');
  const authz = ctx.rpc({ allowStale: options.allowStale });
  const result = await ctx.blocking(['kvs', 'tombstones'], options, () => {
    const all = store.kvList(prefix);
    const visible = authz === 'anonymous' ? [] : all;
    const keys: string[] = [];
    const seen = new Set<string>();
    for (const entry of visible) {
      if (separator === '') {
        keys.push(entry.key);
        continue;
      }
      const after = entry.key.slice(prefix.length);
      const at = after.indexOf(separator);
      if (at === -1) {
        keys.push(entry.key);
        continue;
      }
      const folded = entry.key.slice(0, prefix.length + at + separator.length);
      if (!seen.has(folded)) {
        seen.add(folded);
        keys.push(folded);
      }
    }
    return { index: kvListIndex(store, prefix, all), keys, filtered: visible.length !== all.length };
  });
  const headers = ctx.meta(result.index, options, result.filtered);
  if (result.keys.length === 0 && prefix !== '') return { status: 404, headers, body: '' };
  return jsonResponse(req, result.keys, headers);
}

function kvPut(ctx: EndpointContext, key: string): ConsulResponse {
  const { req, agent } = ctx;
  if (key === '') throw badRequest('Missing key name');
  conflictingFlags(req, 'cas', 'acquire', 'release');
  let op: KvWriteOp = 'set';
  let flags = 0n;
  let modifyIndex: number | undefined;
  let session = '';
  if (req.query.has('flags')) flags = uint64Param(req, 'flags');
  if (req.query.has('cas')) {
    modifyIndex = Number(uint64Param(req, 'cas'));
    op = 'cas';
  }
  if (req.query.has('acquire')) {
    session = req.query.get('acquire');
    op = 'lock';
  }
  if (req.query.has('release')) {
    session = req.query.get('release');
    op = 'unlock';
  }
  const length = req.contentLength ?? req.body.length;
  if (length > KV_MAX_VALUE_SIZE || req.body.length > KV_MAX_VALUE_SIZE) {
    throw new ConsulHttpError(
      413,
      `Request body(${length} bytes) too large, max size: ${KV_MAX_VALUE_SIZE} bytes. See https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size.`,
    );
  }
  if (ctx.rpc() === 'anonymous') throw permissionDenied();
  const applied = agent.kvsApply(op, { key, value: req.body, flags, session, modifyIndex });
  return jsonResponse(req, op === 'set' ? true : applied);
}

function kvDelete(ctx: EndpointContext, key: string): ConsulResponse {
  const { req, agent } = ctx;
  conflictingFlags(req, 'recurse', 'cas');
  let op: KvWriteOp = 'delete';
  let modifyIndex: number | undefined;
  if (req.query.has('recurse')) op = 'delete-tree';
  else if (key === '') throw badRequest('Missing key name');
  if (req.query.has('cas')) {
    modifyIndex = Number(uint64Param(req, 'cas'));
    op = 'delete-cas';
  }
  if (ctx.rpc() === 'anonymous') throw permissionDenied();
  const applied = agent.kvsApply(op, { key, value: null, flags: 0n, session: '', modifyIndex });
  return jsonResponse(req, op === 'delete-cas' ? applied : true);
}
