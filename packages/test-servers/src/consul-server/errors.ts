/**
 * An error that ends a request with `status` and `message` as a plain-text body, the way Consul's HTTP layer
 * writes an `HTTPError` or an RPC error (500 unless it says otherwise).
 */
export class ConsulHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'ConsulHttpError';
  }
}

/** An RPC-level failure: Consul answers 500 with the error text. */
export function rpcError(message: string): ConsulHttpError {
  return new ConsulHttpError(500, message);
}

/** A 400 with Consul's reason text. */
export function badRequest(message: string): ConsulHttpError {
  return new ConsulHttpError(400, message);
}

/** Consul's `structs.ErrNoLeader`. */
export const NO_LEADER = 'No cluster leader';

/** Consul's `acl.ErrNotFound`: the token is unknown. */
export const ACL_NOT_FOUND = 'ACL not found';

/** Consul's `acl.ErrPermissionDenied`. */
export const PERMISSION_DENIED = 'Permission denied';

/** Go's `%#v` / `%q` of a string: double-quoted with Go escapes. */
export function goQuoteString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}
