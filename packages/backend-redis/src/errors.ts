import {
  BatonError,
  ClosedError,
  PermissionDeniedError,
  ProtocolError,
  redact,
  TimeoutError,
  UnavailableError,
} from '@baton/core';

export const BACKEND = 'redis';

/**
 * Every command baton sends, directly or from its scripts: what an ACL user needs besides its key pattern
 * (plus `select` for a database other than 0).
 */
export const ACL_COMMANDS = [
  'evalsha',
  'eval',
  'time',
  'exists',
  'get',
  'set',
  'del',
  'hget',
  'hmget',
  'hset',
  'pexpire',
  'scan',
  'client|setname',
] as const;

/** The least privilege baton needs, for permission errors. */
export function aclHint(prefix: string): string {
  return (
    `an ACL user limited to its keys and these commands (ACL SETUSER <user> on >password ~${prefix}* ` +
    `${ACL_COMMANDS.map((c) => `+${c}`).join(' ')})`
  );
}

/** Credentials are wrong or missing: the server said so while authenticating or on a command. */
const AUTH = /^(WRONGPASS|NOAUTH)\b|invalid password|invalid username-password/i;

/**
 * The typed baton error for a failure of the Redis client during `what`, keeping the client's error as
 * `cause`. Failed authentication and ACL refusals are `PERMISSION_DENIED`; a command that timed out is
 * `TIMEOUT`; a closed client is `CLOSED`; everything the transport can throw (refused connections, resets,
 * a server still loading or read-only) is `UNAVAILABLE`, never a "not acquired". Script errors and other
 * replies Redis should never give are `PROTOCOL`. Messages never hold a password.
 */
export function redisError(error: unknown, what: string, prefix: string, closed = false): BatonError {
  if (error instanceof BatonError) return error;
  const options = { cause: error, backend: BACKEND };
  const detail = redact(error instanceof Error ? error.message : String(error));
  const name = error instanceof Error ? error.name : '';
  if (AUTH.test(detail)) {
    return new PermissionDeniedError(
      `redis: ${what}: authentication failed (${detail}). Fix: check the user and password in REDIS_URL ` +
        '(redis://user:password@host:port) or REDIS_USERNAME and REDIS_PASSWORD.',
      options,
    );
  }
  if (/^NOPERM\b|user executing the script can't run/.test(detail)) {
    return new PermissionDeniedError(
      `redis: ${what}: permission denied (${detail}). baton needs ${aclHint(prefix)}.`,
      options,
    );
  }
  if (/^Command timed out/.test(detail)) {
    return new TimeoutError(
      `redis: ${what}: no answer within BATON_REDIS_TIMEOUT (${detail}). Fix: check that the server in REDIS_URL is reachable and not overloaded.`,
      options,
    );
  }
  if (closed) return new ClosedError(`redis: ${what}: client closed`, options);
  if (name === 'ReplyError' && !/^(LOADING|READONLY|MASTERDOWN|BUSY|TRYAGAIN|CLUSTERDOWN)\b/.test(detail)) {
    return new ProtocolError(`redis: ${what}: the server refused it (${detail})`, options);
  }
  const replica = /^READONLY\b/.test(detail)
    ? ' The server is a read-only replica: point REDIS_URL at the primary.'
    : '';
  return new UnavailableError(
    `redis: ${what} failed: ${detail}.${replica} Fix: check that REDIS_URL names a reachable Redis primary.`,
    options,
  );
}
