import {
  AbortedError,
  BatonError,
  ConfigError,
  InvalidArgumentError,
  PermissionDeniedError,
  ProtocolError,
  redact,
  UnavailableError,
} from '@baton/core';

export const BACKEND = 'consul';

/** An HTTP answer Consul gave that was not a success. */
export class ConsulHttpError extends Error {
  readonly statusCode: number;
  readonly body: string;
  constructor(statusCode: number, body: string) {
    // The body is the server's (or a proxy's) text: it may quote the request, token header included.
    super(`Consul answered HTTP ${statusCode}${body ? `: ${bodyText(body)}` : ''}`);
    this.name = 'ConsulHttpError';
    this.statusCode = statusCode;
    this.body = body;
  }
}

/** The request did not complete within its deadline. */
export class ConsulTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(ms: number) {
    super(`no answer from Consul within ${ms} ms`);
    this.name = 'ConsulTimeoutError';
  }
}

/** What {@link toBatonError} needs to word its messages. */
export interface ErrorContext {
  /** What we were doing, e.g. `acquire 'task/42'`. */
  operation: string;
  /** The key prefix, to name the ACL rule a 403 calls for. */
  prefix: string;
  /**
   * Where the token came from, named when Consul does not know it (`CONSUL_HTTP_TOKEN_FILE (tokenFile)`),
   * or `undefined` when no token is sent.
   */
  tokenSource?: string | undefined;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
]);

const TLS_CODE = /^(CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|ERR_TLS_|ERR_SSL_|EPROTO$)/;

/** Status code and body text of an HTTP error. */
export function httpStatusOf(error: unknown): { status: number; body: string } | undefined {
  return error instanceof ConsulHttpError
    ? { status: error.statusCode, body: bodyText(error.body) }
    : undefined;
}

/** An answer's body fit for a message: cut to `max` characters, secrets masked. */
export function bodyText(body: string, max = 500): string {
  const text = body.trim();
  return redact(text.length > max ? `${text.slice(0, max)}…` : text);
}

/** The ACL rules baton needs, worded for error messages and docs. */
export function aclHint(prefix: string): string {
  return `key_prefix "${prefix}" { policy = "write" } and session_prefix "" { policy = "write" }`;
}

/**
 * Maps whatever the HTTP layer threw onto baton's error hierarchy, keeping the original as `cause`:
 * network failures, timeouts, 429 and 5xx are `UNAVAILABLE` (retryable); 403 is `PERMISSION_DENIED` naming
 * the ACL rules; 400/413 are `INVALID_ARGUMENT`; anything else that breaks the protocol is `PROTOCOL`.
 */
export function toBatonError(error: unknown, context: ErrorContext): BatonError {
  if (error instanceof BatonError) return error;
  const options = { cause: error, backend: BACKEND };
  const what = `Consul: ${context.operation} failed`;
  const http = httpStatusOf(error);
  if (http) {
    const detail = http.body ? `: ${http.body}` : '';
    const { status } = http;
    if (status === 403) {
      const unknownToken = /acl not found|token not found/i.test(http.body);
      const { tokenSource } = context;
      const diagnosis =
        tokenSource === undefined
          ? 'No ACL token was sent (set CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE), and the anonymous token lacks a permission. '
          : unknownToken
            ? `Consul does not know the ACL token: check ${tokenSource}. `
            : `The ACL token (from ${tokenSource}) lacks a permission. `;
      return new PermissionDeniedError(
        `${what}: permission denied (HTTP 403${detail}). ${diagnosis}` +
          `baton needs a token whose policy grants ${aclHint(context.prefix)}.`,
        options,
      );
    }
    if (status === 429 || status >= 500) {
      return new UnavailableError(`${what}: HTTP ${status}${detail}`, options);
    }
    if (status === 400)
      return new InvalidArgumentError(`${what}: Consul rejected the request${detail}`, options);
    if (status === 413) {
      return new InvalidArgumentError(
        `${what}: value too large (Consul's limit is 512 KiB)${detail}`,
        options,
      );
    }
    return new ProtocolError(`${what}: unexpected HTTP ${status}${detail}`, options);
  }
  const code =
    typeof (error as { code?: unknown } | null)?.code === 'string'
      ? (error as { code: string }).code
      : undefined;
  const message = redact(error instanceof Error ? error.message : String(error));
  if (code === 'ERR_INVALID_CHAR' || code === 'ERR_INVALID_HTTP_TOKEN') {
    // Only the token header carries user text; config validation normally refuses such a token earlier.
    return new ConfigError(
      'token',
      `${what}: the ACL token${context.tokenSource ? ` (from ${context.tokenSource})` : ''} cannot be sent as an HTTP header ` +
        '(it contains a line break or another control character; the token is not shown). Fix: set it to the token alone.',
      options,
    );
  }
  if (error instanceof ConsulTimeoutError) {
    return new UnavailableError(`${what}: ${message}`, options);
  }
  if (error instanceof Error && error.name === 'AbortError') {
    return new AbortedError(`${what}: aborted`, options);
  }
  if (code && TLS_CODE.test(code)) {
    return new ConfigError(
      'caFile',
      `${what}: TLS handshake failed (${code}: ${message}). Fix: set CONSUL_CACERT (caFile) to the CA that signed ` +
        "the agent's certificate, and CONSUL_TLS_SERVER_NAME (tlsServerName) if the certificate names another host.",
      options,
    );
  }
  if ((code && (NETWORK_CODES.has(code) || code.startsWith('E'))) || /socket hang up/i.test(message)) {
    const hint =
      code === 'ENOTFOUND' || code === 'EAI_AGAIN'
        ? ' (the agent address does not resolve: check CONSUL_HTTP_ADDR)'
        : ' (is a Consul agent running and reachable there? check CONSUL_HTTP_ADDR)';
    return new UnavailableError(`${what}: ${code ?? 'network error'}${hint}: ${message}`, options);
  }
  if (error instanceof SyntaxError) {
    return new ProtocolError(`${what}: unreadable answer: ${message}`, options);
  }
  return new ProtocolError(`${what}: ${message}`, options);
}
