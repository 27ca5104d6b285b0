/**
 * `/v1/session/*` (`agent/session_endpoint.go` and `agent/consul/session_endpoint.go`): create, destroy,
 * renew, info, list and node, with Consul's body decoding (LockDelay numbers below 1000 are seconds, an
 * explicit `"Checks": []` means no checks) and its error texts.
 */
import type { SessionSpec } from './agent.js';
import { SERF_CHECK_ID } from './agent.js';
import type { EndpointContext } from './endpoint-context.js';
import { badRequest, ConsulHttpError, PERMISSION_DENIED } from './errors.js';
import { NS, parseGoDuration } from './go-duration.js';
import type { JsonOut } from './go-json.js';
import {
  decodeGoJson,
  field,
  type GoJson,
  GoJsonError,
  GoNumber,
  GoObject,
  goKind,
  stringArrayField,
  stringField,
  typeError,
  uint64Field,
} from './go-json.js';
import { type ConsulResponse, jsonResponse, parseQueryOptions, type QueryOptions } from './http-util.js';
import type { ServiceCheckRef, SessionRecord } from './state.js';

const DEFAULT_LOCK_DELAY_NS = 15n * NS.SECOND;
const LOCK_DELAY_MIN_THRESHOLD = 1000n;
const STRUCT = 'Session';

/** A session as Consul's JSON shows it (`Checks` only when it adds something to `NodeChecks`). */
export function sessionJson(session: SessionRecord): JsonOut {
  return {
    ID: session.id,
    Name: session.name,
    Node: session.node,
    LockDelay: session.lockDelayNs,
    Behavior: session.behavior,
    TTL: session.ttl,
    NodeChecks: session.nodeChecks === null ? null : [...session.nodeChecks],
    ServiceChecks:
      session.serviceChecks === null
        ? null
        : session.serviceChecks.map((c) => ({ ID: c.id, Namespace: c.namespace })),
    Checks: session.checks !== null && session.checks.length > 0 ? [...session.checks] : undefined,
    CreateIndex: session.createIndex,
    ModifyIndex: session.modifyIndex,
  };
}

/** `structs.Session.UnmarshalJSON`: a string is a Go duration, a number is nanoseconds; below 1000 means seconds. */
function decodeLockDelay(value: GoJson): bigint {
  let ns = 0n;
  if (typeof value === 'string') {
    ns = parseGoDuration(value);
  } else if (value instanceof GoNumber) {
    ns = BigInt(Math.trunc(Number(value.literal)));
  }
  return ns < LOCK_DELAY_MIN_THRESHOLD ? ns * NS.SECOND : ns;
}

function decodeServiceChecks(object: GoObject): ServiceCheckRef[] | null | undefined {
  const value = field(object, 'ServiceChecks');
  if (value === undefined) return undefined;
  if (value === null) return null;
  if (!Array.isArray(value)) throw typeError(value, STRUCT, 'ServiceChecks', '[]structs.ServiceCheck');
  return value.map((item, i) => {
    if (item === null) return { id: '', namespace: '' };
    if (!(item instanceof GoObject)) {
      throw typeError(item, STRUCT, `ServiceChecks[${i}]`, 'structs.ServiceCheck');
    }
    return {
      id: stringField(item, 'ID', STRUCT, 'ServiceChecks.ID') ?? '',
      namespace: stringField(item, 'Namespace', STRUCT, 'ServiceChecks.Namespace') ?? '',
    };
  });
}

/** Decodes a create body over Consul's defaults, then applies `fixupEmptySessionChecks`. */
export function decodeSessionSpec(body: string | undefined, nodeName: string): SessionSpec {
  let name = '';
  let node = nodeName;
  let lockDelayNs = DEFAULT_LOCK_DELAY_NS;
  let behavior = 'release';
  let ttl = '';
  let nodeChecks: string[] | null = [SERF_CHECK_ID];
  let checks: string[] | null = [SERF_CHECK_ID];
  let serviceChecks: ServiceCheckRef[] | null = null;

  if (body !== undefined) {
    const value = decodeGoJson(body);
    if (value !== null) {
      if (!(value instanceof GoObject)) {
        throw new GoJsonError(
          `json: cannot unmarshal ${goKind(value).split(' ')[0]} into Go value of type structs.Session`,
        );
      }
      name = stringField(value, 'Name', STRUCT) ?? name;
      node = stringField(value, 'Node', STRUCT) ?? node;
      behavior = stringField(value, 'Behavior', STRUCT) ?? behavior;
      ttl = stringField(value, 'TTL', STRUCT) ?? ttl;
      stringField(value, 'ID', STRUCT);
      uint64Field(value, 'CreateIndex', STRUCT);
      uint64Field(value, 'ModifyIndex', STRUCT);
      const givenNodeChecks = stringArrayField(value, 'NodeChecks', STRUCT);
      if (givenNodeChecks !== undefined) nodeChecks = givenNodeChecks;
      const givenChecks = stringArrayField(value, 'Checks', STRUCT, '[]types.CheckID');
      if (givenChecks !== undefined) checks = givenChecks;
      const givenServiceChecks = decodeServiceChecks(value);
      if (givenServiceChecks !== undefined) serviceChecks = givenServiceChecks;
      // The custom LockDelay decoding runs after the struct decode, so type errors above win.
      const lockDelay = field(value, 'LockDelay');
      if (lockDelay !== undefined && lockDelay !== null) lockDelayNs = decodeLockDelay(lockDelay);
    }
  }

  // fixupEmptySessionChecks: `"Checks": []` (or null) means no checks at all; the default serfHealth entry in
  // the legacy field defers to NodeChecks; an empty NodeChecks empties the legacy field.
  if (checks === null || checks.length === 0) {
    nodeChecks = [];
    checks = null;
  } else if (checks.length === 1 && checks[0] === SERF_CHECK_ID) {
    checks = null;
  } else if (nodeChecks === null || nodeChecks.length === 0) {
    checks = null;
  }
  return { name, node, lockDelayNs, behavior, ttl, nodeChecks, serviceChecks, checks };
}

function permissionDenied(): ConsulHttpError {
  return new ConsulHttpError(403, PERMISSION_DENIED);
}

function pathId(path: string, prefix: string): string {
  return path.startsWith(prefix) ? path.slice(prefix.length) : '';
}

/** `PUT /v1/session/create`. */
export function sessionCreate(ctx: EndpointContext): ConsulResponse {
  const { req, agent } = ctx;
  let spec: SessionSpec;
  try {
    // Go decodes the body only when Content-Length is positive; a chunked body is ignored.
    const hasBody = (req.contentLength ?? 0) > 0;
    spec = decodeSessionSpec(hasBody ? req.body.toString('utf8') : undefined, agent.config.nodeName);
  } catch (error) {
    throw badRequest(`Request decode failed: ${(error as Error).message}`);
  }
  if (ctx.rpc() === 'anonymous') throw permissionDenied();
  return jsonResponse(req, { ID: agent.createSession(spec) });
}

/** `PUT /v1/session/destroy/:id`. */
export function sessionDestroy(ctx: EndpointContext): ConsulResponse {
  const { req, agent } = ctx;
  const id = pathId(req.path, '/v1/session/destroy/');
  if (id === '') throw badRequest('Missing session');
  if (ctx.rpc() === 'anonymous') throw permissionDenied();
  agent.destroySession(id);
  return jsonResponse(req, true);
}

/** `PUT /v1/session/renew/:id`: 404 `Session id '<id>' not found` when unknown. */
export function sessionRenew(ctx: EndpointContext): ConsulResponse {
  const { req, agent } = ctx;
  parseQueryOptions(req);
  const id = pathId(req.path, '/v1/session/renew/');
  if (id === '') throw badRequest('Missing session');
  ctx.forward();
  // Consul looks the session up before resolving the token.
  if (!agent.store.session(id)) throw new ConsulHttpError(404, `Session id '${id}' not found`);
  if (ctx.authorize() === 'anonymous') throw permissionDenied();
  const session = agent.renewSession(id);
  if (!session) throw new ConsulHttpError(404, `Session id '${id}' not found`);
  return jsonResponse(req, [sessionJson(session)]);
}

async function sessionQuery(
  ctx: EndpointContext,
  options: QueryOptions,
  select: () => SessionRecord[],
): Promise<ConsulResponse> {
  const { req, agent } = ctx;
  const authz = ctx.rpc({ allowStale: options.allowStale });
  const result = await ctx.blocking(['sessions'], options, () => {
    const all = select();
    const visible = authz === 'anonymous' ? [] : all;
    return {
      index: agent.store.tableIndex('sessions'),
      sessions: visible,
      filtered: visible.length !== all.length,
    };
  });
  return jsonResponse(
    req,
    result.sessions.map(sessionJson),
    ctx.meta(result.index, options, result.filtered),
  );
}

/** `GET /v1/session/info/:id`: `[]` when unknown. */
export function sessionInfo(ctx: EndpointContext): Promise<ConsulResponse> {
  const { req, agent } = ctx;
  const options = parseQueryOptions(req);
  const id = pathId(req.path, '/v1/session/info/');
  if (id === '') throw badRequest('Missing session');
  return sessionQuery(ctx, options, () => {
    const session = agent.store.session(id);
    return session ? [session] : [];
  });
}

/** `GET /v1/session/list`. */
export function sessionList(ctx: EndpointContext): Promise<ConsulResponse> {
  const options = parseQueryOptions(ctx.req);
  return sessionQuery(ctx, options, () => ctx.agent.store.sessions());
}

/** `GET /v1/session/node/:node`. */
export function sessionNode(ctx: EndpointContext): Promise<ConsulResponse> {
  const { req, agent } = ctx;
  const options = parseQueryOptions(req);
  const node = pathId(req.path, '/v1/session/node/');
  if (node === '') throw badRequest('Missing node name');
  return sessionQuery(ctx, options, () => agent.store.sessions().filter((s) => s.node === node));
}
