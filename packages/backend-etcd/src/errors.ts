import {
  BatonError,
  ClosedError,
  InvalidArgumentError,
  PermissionDeniedError,
  ProtocolError,
  redact,
  SessionLostError,
  TimeoutError,
  UnavailableError,
} from '@baton/core';
import {
  ClientClosedError,
  EtcdAuthenticationFailedError,
  EtcdInvalidAuthTokenError,
  EtcdLeaseInvalidError,
  EtcdPermissionDeniedError,
  EtcdRoleNotGrantedError,
  EtcdUserNotFoundError,
  GRPCDeadlineExceededError,
  GRPCInvalidArgumentError,
  GRPCUnauthenticatedError,
} from 'etcd3';

export const BACKEND = 'etcd';

/** The least privilege baton needs, for permission errors. */
export function roleHint(prefix: string): string {
  return `a role with readwrite permission on the key prefix '${prefix}' (etcdctl role grant-permission <role> --prefix=true readwrite ${prefix})`;
}

/**
 * The typed baton error for a failure of the etcd client during `what`, keeping the client's error as
 * `cause`. Permission and authentication failures are `PERMISSION_DENIED`; an unknown lease is
 * `SESSION_LOST`; everything else the transport can throw is `UNAVAILABLE` (or `TIMEOUT` for a deadline),
 * never a "not acquired".
 */
export function etcdError(error: unknown, what: string, prefix: string): BatonError {
  if (error instanceof BatonError) return error;
  const options = { cause: error, backend: BACKEND };
  const detail = redact(error instanceof Error ? error.message : String(error));
  if (
    error instanceof EtcdAuthenticationFailedError ||
    error instanceof EtcdInvalidAuthTokenError ||
    error instanceof EtcdUserNotFoundError ||
    error instanceof GRPCUnauthenticatedError
  ) {
    return new PermissionDeniedError(
      `etcd: ${what}: authentication failed (${detail}). Fix: check ETCDCTL_USER and ETCDCTL_PASSWORD.`,
      options,
    );
  }
  if (error instanceof EtcdPermissionDeniedError || error instanceof EtcdRoleNotGrantedError) {
    return new PermissionDeniedError(
      `etcd: ${what}: permission denied (${detail}). baton needs ${roleHint(prefix)}.`,
      options,
    );
  }
  if (error instanceof EtcdLeaseInvalidError || /requested lease not found/.test(detail)) {
    return new SessionLostError(`etcd: ${what}: the session's lease is gone (${detail})`, options);
  }
  if (error instanceof ClientClosedError) return new ClosedError(`etcd: ${what}: client closed`, options);
  if (error instanceof GRPCDeadlineExceededError) {
    return new TimeoutError(`etcd: ${what}: no answer before the deadline (${detail})`, options);
  }
  if (error instanceof GRPCInvalidArgumentError) {
    return new InvalidArgumentError(`etcd: ${what}: rejected as invalid (${detail})`, options);
  }
  if (/etcdserver: (request is too large|too many operations in txn)/.test(detail)) {
    return new ProtocolError(`etcd: ${what}: ${detail}`, options);
  }
  return new UnavailableError(`etcd: ${what} failed: ${detail}`, options);
}
