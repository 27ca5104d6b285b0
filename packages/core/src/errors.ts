/**
 * Stable machine-readable codes for every error baton raises. Codes never change meaning once released;
 * match on `code`, not on `message` or class names.
 */
export type BatonErrorCode =
  /** Configuration is missing or malformed; `field` names the offending setting. */
  | 'CONFIG_INVALID'
  /** A caller passed an argument that can never work (bad key, negative TTL, ...). */
  | 'INVALID_ARGUMENT'
  /** The backend could not be reached or answered with a transient failure (network, 5xx, throttling). */
  | 'UNAVAILABLE'
  /** The backend refused the credentials or the operation (ACL token, IAM policy). */
  | 'PERMISSION_DENIED'
  /** A resource the backend needs does not exist (a DynamoDB table, a database schema). */
  | 'RESOURCE_NOT_FOUND'
  /** The backend answered something that breaks its own protocol. */
  | 'PROTOCOL'
  /** The session can no longer be trusted: its TTL passed without a successful renewal, or it was destroyed. */
  | 'SESSION_LOST'
  /** A lease can no longer be trusted: its session was lost or someone else now holds the key. */
  | 'LEASE_LOST'
  /** A lease ended because its holder released it. Used as an `AbortSignal` reason, never thrown. */
  | 'LEASE_RELEASED'
  /** An operation did not finish within the time it was given. */
  | 'TIMEOUT'
  /** An operation was aborted through its `AbortSignal`. */
  | 'ABORTED'
  /** A fenced write carried a fence older than the current one and was rejected. */
  | 'STALE_FENCE'
  /** A task row or payload is not what the handler or the source expects. */
  | 'TASK_INVALID'
  /** A task handler threw or returned something unusable. */
  | 'HANDLER_FAILED'
  /** The component was closed or stopped and cannot be used any more. */
  | 'CLOSED';

/** Options accepted by every {@link BatonError} constructor. */
export interface BatonErrorOptions {
  /** The underlying error (the backend client's error, a zod error, ...). Never swallowed. */
  cause?: unknown;
  /** Backend name (`consul`, `dynamodb`, ...) when the error comes from one. */
  backend?: string;
}

/**
 * The root of baton's single error hierarchy. Every error thrown by baton or a backend is a `BatonError`
 * with a stable {@link BatonErrorCode}; the client library's own error, if any, is kept as `cause`.
 *
 * Contention is never an error: `tryAcquire` returns `null` when someone else holds a lock.
 */
export class BatonError extends Error {
  readonly code: BatonErrorCode;
  readonly backend: string | undefined;

  constructor(code: BatonErrorCode, message: string, options: BatonErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.backend = options.backend;
  }

  /** True when retrying the same operation later may succeed. */
  get retryable(): boolean {
    return this.code === 'UNAVAILABLE' || this.code === 'TIMEOUT';
  }
}

/** Bad configuration. `field` is the setting's name as the user wrote it (env var or config key). */
export class ConfigError extends BatonError {
  readonly field: string;
  constructor(field: string, message: string, options: BatonErrorOptions = {}) {
    super('CONFIG_INVALID', message, options);
    this.field = field;
  }
}

/** An argument that can never work, whatever the backend's state. */
export class InvalidArgumentError extends BatonError {
  constructor(message: string, options: BatonErrorOptions = {}) {
    super('INVALID_ARGUMENT', message, options);
  }
}

/** The backend is unreachable or failed transiently. Retrying later may succeed. */
export class UnavailableError extends BatonError {
  constructor(message: string, options: BatonErrorOptions = {}) {
    super('UNAVAILABLE', message, options);
  }
}

/** Credentials were rejected or lack a permission. Retrying will not help; fix the token or policy. */
export class PermissionDeniedError extends BatonError {
  constructor(message: string, options: BatonErrorOptions = {}) {
    super('PERMISSION_DENIED', message, options);
  }
}

/** A resource the backend needs is missing; the message says what to run to create it. */
export class ResourceNotFoundError extends BatonError {
  constructor(message: string, options: BatonErrorOptions = {}) {
    super('RESOURCE_NOT_FOUND', message, options);
  }
}

/** The backend answered in a way its protocol does not allow. */
export class ProtocolError extends BatonError {
  constructor(message: string, options: BatonErrorOptions = {}) {
    super('PROTOCOL', message, options);
  }
}

/** The session is gone; every lease it held is lost too. */
export class SessionLostError extends BatonError {
  constructor(message: string, options: BatonErrorOptions = {}) {
    super('SESSION_LOST', message, options);
  }
}

/** The lease is gone. Stop writing anything that relies on holding it. */
export class LeaseLostError extends BatonError {
  constructor(message: string, options: BatonErrorOptions = {}) {
    super('LEASE_LOST', message, options);
  }
}

/** Abort reason of a lease's signal after a clean release. */
export class LeaseReleasedError extends BatonError {
  constructor(message: string, options: BatonErrorOptions = {}) {
    super('LEASE_RELEASED', message, options);
  }
}

/** An operation ran out of time. */
export class TimeoutError extends BatonError {
  constructor(message: string, options: BatonErrorOptions = {}) {
    super('TIMEOUT', message, options);
  }
}

/** An operation was aborted by its caller's signal. `cause` is the signal's reason. */
export class AbortedError extends BatonError {
  constructor(message: string, options: BatonErrorOptions = {}) {
    super('ABORTED', message, options);
  }
}

/** A fenced write was rejected because a newer fence exists. */
export class StaleFenceError extends BatonError {
  constructor(message: string, options: BatonErrorOptions = {}) {
    super('STALE_FENCE', message, options);
  }
}

/** The component was closed and cannot be used any more. */
export class ClosedError extends BatonError {
  constructor(message: string, options: BatonErrorOptions = {}) {
    super('CLOSED', message, options);
  }
}

/** True when `error` is a {@link BatonError}, optionally with the given code. */
export function isBatonError(error: unknown, code?: BatonErrorCode): error is BatonError {
  return error instanceof BatonError && (code === undefined || error.code === code);
}

/** Throws the signal's reason as an {@link AbortedError} when `signal` is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, what = 'operation'): void {
  if (signal?.aborted) {
    const reason: unknown = signal.reason;
    if (reason instanceof BatonError) throw reason;
    throw new AbortedError(`${what} aborted`, { cause: reason });
  }
}
