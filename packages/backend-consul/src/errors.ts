import {
  AbortedError,
  BatonError,
  ConfigError,
  InvalidArgumentError,
  PermissionDeniedError,
  ProtocolError,
  UnavailableError,
} from '@baton/core';

export const BACKEND = 'consul';

/** An HTTP answer Consul gave that was not a success, from either the npm client or our own requests. */
export class ConsulHttpError extends Error {
  readonly statusCode: number;
  readonly body: string;
  constructor(statusCode: number, body: string) {
    super(`Consul answered HTTP ${statusCode}${body ? `: ${body}` : ''}`);
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

/** Status code and body text of an HTTP error from the npm client or from {@link ConsulHttpError}. */
export function httpStatusOf(error: unknown): { status: number; body: string } | undefined {
  if (error instanceof ConsulHttpError) return { status: error.statusCode, body: error.body };
  if (typeof error !== 'object' || error === null) return undefined;
  const candidate = error as { isResponse?: unknown; statusCode?: unknown; response?: { body?: unknown } };
  if (candidate.isResponse !== true || typeof candidate.statusCode !== 'number') return undefined;
  return { status: candidate.statusCode, body: bodyText(candidate.response?.body) };
}

export function bodyText(body: unknown): string {
  let text: string;
  if (body === undefined || body === null) text = '';
  else if (typeof body === 'string') text = body;
  else if (Buffer.isBuffer(body)) text = body.toString('utf8');
  else text = JSON.stringify(body);
  text = text.trim();
  return text.length > 500 ? `${text.slice(0, 500)}…` : text;
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
  const options = { cause: withoutRequest(error), backend: BACKEND };
  const what = `Consul: ${context.operation} failed`;
  const http = httpStatusOf(error);
  if (http) {
    const detail = http.body ? `: ${http.body}` : '';
    const { status } = http;
    if (status === 403) {
      const unknownToken = /acl not found|token not found/i.test(http.body);
      return new PermissionDeniedError(
        `${what}: permission denied (HTTP 403${detail}). ` +
          (unknownToken
            ? 'Consul does not know the ACL token: check CONSUL_HTTP_TOKEN. '
            : 'The ACL token lacks a permission. ') +
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
  const flags = error as { code?: unknown; isTimeout?: unknown; isAbort?: unknown; isCodec?: unknown };
  const code = typeof flags?.code === 'string' ? flags.code : undefined;
  const message = error instanceof Error ? error.message : String(error);
  if (flags?.isTimeout === true || error instanceof ConsulTimeoutError) {
    return new UnavailableError(`${what}: ${message}`, options);
  }
  if (flags?.isAbort === true || (error instanceof Error && error.name === 'AbortError')) {
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
    const hint = code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? ' (check CONSUL_HTTP_ADDR)' : '';
    return new UnavailableError(`${what}: ${code ?? 'network error'}${hint}: ${message}`, options);
  }
  if (flags?.isCodec === true || error instanceof SyntaxError) {
    return new ProtocolError(`${what}: unreadable answer: ${message}`, options);
  }
  return new ProtocolError(`${what}: ${message}`, options);
}

/**
 * The npm client's HTTP errors keep the whole response, and through it the request with its
 * `X-Consul-Token` header: logging such an error would print the token. Keep the client's error as `cause`,
 * but with a plain copy of the response (status, headers, body) instead.
 */
function withoutRequest(error: unknown): unknown {
  if (typeof error !== 'object' || error === null || !('response' in error)) return error;
  const response = (error as { response?: unknown }).response as
    | { statusCode?: unknown; statusMessage?: unknown; headers?: unknown; body?: unknown }
    | null
    | undefined;
  if (!response || typeof response !== 'object') return error;
  const plain = {
    statusCode: response.statusCode,
    statusMessage: response.statusMessage,
    headers: response.headers,
    body: response.body,
  };
  try {
    Object.defineProperty(error, 'response', {
      value: plain,
      configurable: true,
      enumerable: true,
      writable: true,
    });
  } catch {
    return new ConsulHttpError(Number(plain.statusCode) || 0, bodyText(plain.body));
  }
  return error;
}
