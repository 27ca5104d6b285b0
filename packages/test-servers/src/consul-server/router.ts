/**
 * Routing in the manner of Consul's `registerEndpoint`: unknown paths get Consul's 404 text, `OPTIONS` gets the
 * `Allow` list, a wrong method gets 405 with `Allow`, and handler errors become plain-text bodies.
 */
import type { ConsulAgent } from './agent.js';
import { EndpointContext } from './endpoint-context.js';
import { ConsulHttpError } from './errors.js';
import type { ConsulRequest, ConsulResponse } from './http-util.js';
import { textResponse } from './http-util.js';
import { kvEndpoint } from './kv-endpoint.js';
import {
  sessionCreate,
  sessionDestroy,
  sessionInfo,
  sessionList,
  sessionNode,
  sessionRenew,
} from './session-endpoint.js';
import { agentSelf, healthNode, statusLeader, statusPeers } from './status-endpoint.js';
import { txnEndpoint } from './txn-endpoint.js';

type Handler = (ctx: EndpointContext) => ConsulResponse | Promise<ConsulResponse>;

interface Route {
  /** The path part of the request counter key (`/v1/kv`, `/v1/session/renew`, ...). */
  readonly pattern: string;
  /** Whether the route also serves `pattern/<anything>`. */
  readonly prefix: boolean;
  readonly methods: readonly string[];
  readonly handler: Handler;
}

const ROUTES: readonly Route[] = [
  { pattern: '/v1/kv', prefix: true, methods: ['GET', 'PUT', 'DELETE'], handler: kvEndpoint },
  { pattern: '/v1/txn', prefix: false, methods: ['PUT'], handler: txnEndpoint },
  { pattern: '/v1/session/create', prefix: false, methods: ['PUT'], handler: sessionCreate },
  { pattern: '/v1/session/destroy', prefix: true, methods: ['PUT'], handler: sessionDestroy },
  { pattern: '/v1/session/renew', prefix: true, methods: ['PUT'], handler: sessionRenew },
  { pattern: '/v1/session/info', prefix: true, methods: ['GET'], handler: sessionInfo },
  { pattern: '/v1/session/node', prefix: true, methods: ['GET'], handler: sessionNode },
  { pattern: '/v1/session/list', prefix: false, methods: ['GET'], handler: sessionList },
  { pattern: '/v1/status/leader', prefix: false, methods: ['GET'], handler: statusLeader },
  { pattern: '/v1/status/peers', prefix: false, methods: ['GET'], handler: statusPeers },
  { pattern: '/v1/agent/self', prefix: false, methods: ['GET'], handler: agentSelf },
  { pattern: '/v1/health/node', prefix: true, methods: ['GET'], handler: healthNode },
];

function findRoute(path: string): Route | undefined {
  return ROUTES.find((r) => path === r.pattern || (r.prefix && path.startsWith(`${r.pattern}/`)));
}

/** The request counter key: `"METHOD /v1/path-pattern"`, or the literal path for unknown routes. */
export function requestPattern(method: string, path: string): string {
  return `${method} ${findRoute(path)?.pattern ?? path}`;
}

/** Routes `req` and runs its handler, turning thrown {@link ConsulHttpError}s into Consul's error responses. */
export async function route(agent: ConsulAgent, req: ConsulRequest): Promise<ConsulResponse> {
  if (req.path === '/') {
    return textResponse(
      200,
      'Consul Agent: UI disabled. To enable, set ui_config.enabled=true in the agent configuration and restart.',
    );
  }
  const found = findRoute(req.path);
  if (!found) {
    return textResponse(
      404,
      req.path.includes('/v1/')
        ? 'Invalid URL path: not a recognized HTTP API endpoint\n'
        : "Invalid URL path: if attempting to use the HTTP API, ensure the path starts with '/v1/'\n",
    );
  }
  const allow = ['OPTIONS', ...found.methods].join(',');
  if (req.method === 'OPTIONS') return { status: 200, headers: { Allow: allow }, body: '' };
  if (!found.methods.includes(req.method)) {
    return textResponse(405, `method ${req.method} not allowed`, { Allow: allow });
  }
  try {
    return await found.handler(new EndpointContext(agent, req));
  } catch (error) {
    if (error instanceof ConsulHttpError)
      return textResponse(error.status, error.message, { ...error.headers });
    return textResponse(500, error instanceof Error ? error.message : String(error));
  }
}
