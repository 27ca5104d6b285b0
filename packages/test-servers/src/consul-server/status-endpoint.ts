/**
 * Reachability probes and node health: `/v1/status/leader`, `/v1/status/peers`, `/v1/agent/self` and
 * `/v1/health/node/:node` (enough to see the `serfHealth` check the sessions depend on).
 */
import type { EndpointContext } from './endpoint-context.js';
import { ConsulHttpError, PERMISSION_DENIED } from './errors.js';
import { type ConsulResponse, jsonResponse, parseQueryOptions } from './http-util.js';

/** The server's Raft address as `/v1/status/leader` reports it. */
export const RAFT_ADDRESS = '127.0.0.1:8300';
/** The Consul version the test server claims to be. */
export const CONSUL_VERSION = '1.21.0';

/** `GET /v1/status/leader`: the leader's address, `""` during an election. No ACL. */
export function statusLeader(ctx: EndpointContext): ConsulResponse {
  return jsonResponse(ctx.req, ctx.agent.hasLeader ? RAFT_ADDRESS : '');
}

/** `GET /v1/status/peers`. No ACL. */
export function statusPeers(ctx: EndpointContext): ConsulResponse {
  return jsonResponse(ctx.req, [RAFT_ADDRESS]);
}

/** `GET /v1/agent/self`: the agent's own view; answers during elections (it is local), needs a token. */
export function agentSelf(ctx: EndpointContext): ConsulResponse {
  const { agent, req } = ctx;
  if (ctx.authorize() === 'anonymous') throw new ConsulHttpError(403, PERMISSION_DENIED);
  const { config } = agent;
  return jsonResponse(req, {
    Config: {
      Datacenter: config.datacenter,
      PrimaryDatacenter: config.datacenter,
      NodeName: config.nodeName,
      NodeID: agent.nodeId,
      Revision: 'baton-test',
      Server: true,
      Version: CONSUL_VERSION,
    },
    Member: {
      Name: config.nodeName,
      Addr: '127.0.0.1',
      Port: 8301,
      Tags: { dc: config.datacenter, role: 'consul', build: CONSUL_VERSION },
      Status: 1,
    },
    Meta: {},
  });
}

/** `GET /v1/health/node/:node`: the node's checks (the anonymous token sees none). */
export async function healthNode(ctx: EndpointContext): Promise<ConsulResponse> {
  const { agent, req } = ctx;
  const options = parseQueryOptions(req);
  const node = req.path.slice('/v1/health/node/'.length);
  if (node === '') throw new ConsulHttpError(400, 'Missing node name');
  const authz = ctx.rpc({ allowStale: options.allowStale });
  const result = await ctx.blocking(['checks'], options, () => {
    const all = agent.store.checks().filter((c) => c.node === node);
    const visible = authz === 'anonymous' ? [] : all;
    return {
      index: agent.store.tableIndex('checks'),
      checks: visible,
      filtered: visible.length !== all.length,
    };
  });
  return jsonResponse(
    req,
    result.checks.map((c) => ({
      Node: c.node,
      CheckID: c.checkId,
      Name: c.name,
      Status: c.status,
      Notes: '',
      Output: c.output,
      ServiceID: '',
      ServiceName: '',
      ServiceTags: [],
      Type: '',
      Interval: '',
      Timeout: '',
      ExposedPort: 0,
      Definition: {},
      CreateIndex: c.createIndex,
      ModifyIndex: c.modifyIndex,
    })),
    ctx.meta(result.index, options, result.filtered),
  );
}
