/**
 * A minimal ACL system: with tokens configured, each of them is a management token, the anonymous token (no
 * token sent) may do nothing, and any other token is unknown. Consul reports an unknown token as 403
 * `ACL not found` on every endpoint; what the anonymous token gets depends on the endpoint (403
 * `Permission denied` for direct reads and writes, silently filtered results for listings, per-operation
 * errors inside `/v1/txn`), and the endpoints handle that.
 */
import { ACL_NOT_FOUND, ConsulHttpError } from './errors.js';
import type { ConsulRequest } from './http-util.js';

/** What a request may do. */
export type Authz = 'management' | 'anonymous';

/** The request's token as Consul finds it: `?token=`, then `X-Consul-Token`, then `Authorization: Bearer`. */
export function requestToken(req: ConsulRequest): string {
  const fromQuery = req.query.get('token');
  if (fromQuery !== '') return fromQuery;
  const header = req.headers['x-consul-token'];
  const fromHeader = Array.isArray(header) ? header[0] : header;
  if (fromHeader) return fromHeader;
  const auth = req.headers.authorization;
  if (auth) {
    const parts = auth.split(' ');
    if (parts.length > 1 && parts[0]!.toLowerCase() === 'bearer') {
      return parts.slice(1).join(' ').trim().split(' ')[0]!.trim();
    }
  }
  return '';
}

/** Resolves the request's token, throwing 403 `ACL not found` for unknown tokens. */
export function resolveToken(tokens: ReadonlySet<string> | undefined, req: ConsulRequest): Authz {
  if (tokens === undefined) return 'management';
  const token = requestToken(req);
  if (token === '' || token === 'anonymous') return 'anonymous';
  if (tokens.has(token)) return 'management';
  throw new ConsulHttpError(403, ACL_NOT_FOUND);
}
