/**
 * `PUT /v1/txn` (`agent/txn_endpoint.go`, `agent/consul/txn_endpoint.go`, `agent/consul/state/txn.go`): up to
 * 128 KV operations applied atomically. Pre-checks (empty key, ACL, lock-delay) run first and reject the whole
 * transaction without a Raft entry; then every operation runs in order against the staged state, all errors
 * are collected, and any error rolls everything back with 409 `{"Results":null,"Errors":[{OpIndex,What}]}`.
 * A transaction of reads only takes the read path (`?stale` allowed, leader headers, no Raft entry).
 */
import type { Authz } from './acl.js';
import type { EndpointContext } from './endpoint-context.js';
import { ConsulHttpError, goQuoteString, PERMISSION_DENIED } from './errors.js';
import {
  decodeGoBase64,
  decodeGoJson,
  field,
  type GoJson,
  GoJsonError,
  GoObject,
  goKind,
  stringField,
  typeError,
  uint64Field,
} from './go-json.js';
import { type ConsulResponse, jsonResponse, leaderHeaders, parseQueryOptions } from './http-util.js';
import { dirEntryJson, KV_MAX_VALUE_SIZE } from './kv-endpoint.js';
import {
  kvsCheckIndex,
  kvsCheckSession,
  kvsDelete,
  kvsDeleteCas,
  kvsDeleteTree,
  kvsLock,
  kvsSet,
  kvsSetCas,
  kvsUnlock,
  type OpContext,
} from './kv-ops.js';
import type { DirEntry } from './state.js';

/** Consul's limit on operations per transaction. */
export const MAX_TXN_OPS = 128;
/** Consul's `txn_max_req_len` default (the KV value size limit). */
const MAX_TXN_LEN = 512 * 1024;

const WRITE_VERBS = new Set(['set', 'delete', 'delete-cas', 'delete-tree', 'cas', 'lock', 'unlock']);
const TXN_OP_FIELDS = ['KV', 'Node', 'Service', 'Check'];
const KV_OP_FIELDS = ['Verb', 'Key', 'Value', 'Flags', 'Index', 'Session', 'Namespace', 'Partition'];

/** One decoded KV operation. */
interface KvTxnOp {
  readonly verb: string;
  readonly key: string;
  readonly value: Buffer | null;
  readonly flags: bigint;
  readonly index: number;
  readonly session: string;
}

type TxnError = {
  readonly OpIndex: number;
  readonly What: string;
};

function rejectUnknownFields(object: GoObject, known: readonly string[]): void {
  const lower = new Set(known.map((name) => name.toLowerCase()));
  for (const [key] of object.entries) {
    if (!lower.has(key.toLowerCase())) throw new GoJsonError(`json: unknown field ${JSON.stringify(key)}`);
  }
}

function decodeValue(value: GoJson | undefined): Buffer | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw typeError(value, 'TxnOp', 'KV.Value', '[]uint8');
  return decodeGoBase64(value);
}

/** Decodes the body as `api.TxnOps` with unknown fields rejected, like Consul's `decodeBody`. */
export function decodeTxnOps(text: string): KvTxnOp[] {
  const decoded = decodeGoJson(text);
  if (decoded === null) return [];
  if (!Array.isArray(decoded)) {
    throw new GoJsonError(
      `json: cannot unmarshal ${goKind(decoded).split(' ')[0]} into Go value of type api.TxnOps`,
    );
  }
  const ops: KvTxnOp[] = [];
  for (const item of decoded) {
    if (item === null) continue;
    if (!(item instanceof GoObject)) {
      throw new GoJsonError(
        `json: cannot unmarshal ${goKind(item).split(' ')[0]} into Go value of type api.TxnOp`,
      );
    }
    rejectUnknownFields(item, TXN_OP_FIELDS);
    for (const other of ['Node', 'Service', 'Check']) {
      const op = field(item, other);
      if (op !== undefined && op !== null) {
        throw new GoJsonError(`${other} operations are not supported by the Consul test server (KV only)`);
      }
    }
    const kv = field(item, 'KV');
    if (kv === undefined || kv === null) continue;
    if (!(kv instanceof GoObject)) throw typeError(kv, 'TxnOp', 'KV', 'api.KVTxnOp');
    rejectUnknownFields(kv, KV_OP_FIELDS);
    stringField(kv, 'Namespace', 'TxnOp', 'KV.Namespace');
    stringField(kv, 'Partition', 'TxnOp', 'KV.Partition');
    ops.push({
      verb: stringField(kv, 'Verb', 'TxnOp', 'KV.Verb') ?? '',
      key: stringField(kv, 'Key', 'TxnOp', 'KV.Key') ?? '',
      value: decodeValue(field(kv, 'Value')),
      flags: uint64Field(kv, 'Flags', 'TxnOp', 'KV.Flags') ?? 0n,
      index: Number(uint64Field(kv, 'Index', 'TxnOp', 'KV.Index') ?? 0n),
      session: stringField(kv, 'Session', 'TxnOp', 'KV.Session') ?? '',
    });
  }
  return ops;
}

/** `kvsPreApply` for every operation: all failures are reported, nothing is applied. */
function preCheck(ctx: EndpointContext, ops: readonly KvTxnOp[], authz: Authz): TxnError[] {
  const errors: TxnError[] = [];
  ops.forEach((op, i) => {
    if (op.key === '' && op.verb !== 'delete-tree') {
      errors.push({ OpIndex: i, What: 'Must provide key' });
    } else if (authz === 'anonymous' && op.verb !== 'get' && op.verb !== 'get-tree') {
      errors.push({ OpIndex: i, What: PERMISSION_DENIED });
    } else if (op.verb === 'lock' && ctx.agent.lockDelays.active(op.key)) {
      errors.push({ OpIndex: i, What: `failed to lock key ${goQuoteString(op.key)} due to lock delay` });
    }
  });
  return errors;
}

/** Runs one operation (`txnKVS`); returns its result entries, without values except for `get` verbs. */
function runOp(ctx: OpContext, op: KvTxnOp): DirEntry[] {
  const input = { key: op.key, value: op.value, flags: op.flags, session: op.session, modifyIndex: op.index };
  const q = goQuoteString(op.key);
  const fail = (what: string): never => {
    throw new ConsulHttpError(409, what);
  };
  let entry: DirEntry | undefined;
  switch (op.verb) {
    case 'set':
      entry = kvsSet(ctx, input);
      break;
    case 'delete':
      kvsDelete(ctx, op.key);
      break;
    case 'delete-cas':
      if (!kvsDeleteCas(ctx, op.key, op.index)) fail(`failed to delete key ${q}, index is stale`);
      break;
    case 'delete-tree':
      kvsDeleteTree(ctx, op.key);
      break;
    case 'cas':
      entry = kvsSetCas(ctx, input) ?? fail(`failed to set key ${q}, index is stale`);
      break;
    case 'lock':
      entry = kvsLock(ctx, input) ?? fail(`failed to lock key ${q}, lock is already held`);
      break;
    case 'unlock':
      entry =
        kvsUnlock(ctx, input) ??
        fail(`failed to unlock key ${q}, lock isn't held, or is held by another session`);
      break;
    case 'get':
      entry = ctx.txn.kvGet(op.key) ?? fail(`key ${q} doesn't exist`);
      return [entry];
    case 'get-tree':
      return ctx.txn.kvList(op.key);
    case 'check-session':
      entry = kvsCheckSession(ctx, op.key, op.session);
      break;
    case 'check-index':
      entry = kvsCheckIndex(ctx, op.key, op.index);
      break;
    case 'check-not-exists':
      if (ctx.txn.kvGet(op.key)) fail(`key ${q} exists`);
      break;
    default:
      fail(`unknown KV verb ${goQuoteString(op.verb)}`);
  }
  return entry ? [{ ...entry, value: null }] : [];
}

/** `txnDispatch`: every operation runs, every error is collected. */
function dispatch(ctx: OpContext, ops: readonly KvTxnOp[]): { results: DirEntry[]; errors: TxnError[] } {
  const results: DirEntry[] = [];
  const errors: TxnError[] = [];
  ops.forEach((op, i) => {
    try {
      results.push(...runOp(ctx, op));
    } catch (error) {
      if (!(error instanceof ConsulHttpError)) throw error;
      errors.push({ OpIndex: i, What: error.message });
    }
  });
  return { results, errors };
}

function conflict(
  ctx: EndpointContext,
  errors: TxnError[],
  headers: Record<string, string> = {},
): ConsulResponse {
  return jsonResponse(ctx.req, { Results: null, Errors: errors }, headers, 409);
}

function success(
  ctx: EndpointContext,
  results: DirEntry[],
  authz: Authz,
  headers: Record<string, string> = {},
): ConsulResponse {
  // ACL filtering of results: the anonymous token may read nothing.
  const visible = authz === 'anonymous' ? [] : results;
  return jsonResponse(
    ctx.req,
    { Results: visible.map((e) => ({ KV: dirEntryJson(e) })), Errors: null },
    headers,
  );
}

/** Handles `PUT /v1/txn`. */
export function txnEndpoint(ctx: EndpointContext): ConsulResponse {
  const { req, agent } = ctx;
  if ((req.contentLength ?? 0) > MAX_TXN_LEN || req.body.length > MAX_TXN_LEN) {
    throw new ConsulHttpError(413, `Request body too large, max size: ${MAX_TXN_LEN} bytes`);
  }
  let ops: KvTxnOp[];
  try {
    ops = decodeTxnOps(req.body.toString('utf8'));
  } catch (error) {
    throw new ConsulHttpError(400, `Failed to parse body: ${(error as Error).message}`);
  }
  if (ops.length > MAX_TXN_OPS) {
    throw new ConsulHttpError(
      413,
      `Transaction contains too many operations (${ops.length} > ${MAX_TXN_OPS})`,
    );
  }
  for (const op of ops) {
    const size = op.value?.length ?? 0;
    if (size > KV_MAX_VALUE_SIZE) {
      throw new ConsulHttpError(
        413,
        `Value for key ${goQuoteString(op.key)} is too large (${size} > ${KV_MAX_VALUE_SIZE} bytes)`,
      );
    }
  }

  if (!ops.some((op) => WRITE_VERBS.has(op.verb))) {
    const options = parseQueryOptions(req);
    const authz = ctx.rpc({ allowStale: options.allowStale });
    const headers = leaderHeaders(agent.hasLeader, agent.lastContactMs());
    const rejected = preCheck(ctx, ops, authz);
    if (rejected.length > 0) return conflict(ctx, rejected, headers);
    const { results, errors } = dispatch(agent.opContext(agent.store.view()), ops);
    if (errors.length > 0) return conflict(ctx, errors, headers);
    return success(ctx, results, authz, headers);
  }

  const authz = ctx.rpc();
  const rejected = preCheck(ctx, ops, authz);
  if (rejected.length > 0) return conflict(ctx, rejected);
  const txn = agent.store.begin();
  const { results, errors } = dispatch(agent.opContext(txn), ops);
  if (errors.length > 0) {
    txn.abort();
    return conflict(ctx, errors);
  }
  txn.commit();
  return success(ctx, results, authz);
}
