// What a failure means to the user of the `baton` command: its exit code, a one-line description that walks
// the cause chain, and a hint naming the fix.
import { BatonError, type BatonErrorCode } from '@baton/core';

/**
 * Exit codes of the `baton` command. Scripts may rely on them; they never change meaning.
 *
 * | code | meaning |
 * |---|---|
 * | 0 | success |
 * | 1 | runtime failure (a task, a check or an operation failed after startup) |
 * | 2 | usage or configuration error: bad flag, bad value, missing handler, nothing was done |
 * | 3 | a backend or the database could not be reached |
 * | 4 | permission denied by a backend or the database |
 * | 130 | stopped by SIGINT (after a graceful stop) |
 * | 143 | stopped by SIGTERM (after a graceful stop) |
 */
export const ExitCode = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  UNAVAILABLE: 3,
  PERMISSION_DENIED: 4,
  SIGINT: 130,
  SIGTERM: 143,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * A problem with how the command was invoked (flags, arguments, config file, handler module). Always exit 2,
 * and always raised before anything connects.
 */
export class UsageError extends Error {
  /** The flag, argument, field or variable at fault. */
  readonly field: string | undefined;
  constructor(message: string, options: { field?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'UsageError';
    this.field = options.field;
  }
}

/** A failure whose message was already reported (e.g. a failed demo check); carries only the exit code. */
export class ReportedFailure extends Error {
  readonly exitCode: ExitCode;
  constructor(message: string, exitCode: ExitCode = ExitCode.FAILURE) {
    super(message);
    this.name = 'ReportedFailure';
    this.exitCode = exitCode;
  }
}

const networkCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
]);

/** What an error means for the exit code and for the `code` field of `--json` error output. */
export interface Classified {
  exitCode: ExitCode;
  /** A baton error code, `USAGE`, or `INTERNAL`. */
  code: BatonErrorCode | 'USAGE' | 'INTERNAL';
  /** Field or variable at fault, when known. */
  field: string | undefined;
}

/**
 * Maps an error to an exit code. Looks through the `cause` chain for the most specific signal: a
 * {@link BatonError} code, a PostgreSQL SQLSTATE, or a Node network error code.
 */
export function classifyError(error: unknown): Classified {
  if (error instanceof UsageError) return { exitCode: ExitCode.USAGE, code: 'USAGE', field: error.field };
  if (error instanceof ReportedFailure)
    return { exitCode: error.exitCode, code: 'INTERNAL', field: undefined };
  const chain = causeChain(error);
  const baton = chain.find((e): e is BatonError => e instanceof BatonError);
  const field = baton && 'field' in baton && typeof baton.field === 'string' ? baton.field : undefined;
  for (const e of chain) {
    const code = errorCode(e);
    if (code === undefined) continue;
    if (networkCodes.has(code) || /^08/.test(code) || code === '57P03') {
      return { exitCode: ExitCode.UNAVAILABLE, code: 'UNAVAILABLE', field };
    }
    if (/^28/.test(code) || code === '42501') {
      return { exitCode: ExitCode.PERMISSION_DENIED, code: 'PERMISSION_DENIED', field };
    }
  }
  if (baton) return { exitCode: exitCodeFor(baton.code), code: baton.code, field };
  return { exitCode: ExitCode.FAILURE, code: 'INTERNAL', field: undefined };
}

/** Exit code of a baton error code. */
export function exitCodeFor(code: BatonErrorCode): ExitCode {
  switch (code) {
    case 'CONFIG_INVALID':
    case 'INVALID_ARGUMENT':
    case 'RESOURCE_NOT_FOUND':
      return ExitCode.USAGE;
    case 'UNAVAILABLE':
    case 'TIMEOUT':
      return ExitCode.UNAVAILABLE;
    case 'PERMISSION_DENIED':
      return ExitCode.PERMISSION_DENIED;
    default:
      return ExitCode.FAILURE;
  }
}

/** The error and its causes, outermost first (cycles cut). */
export function causeChain(error: unknown): unknown[] {
  const chain: unknown[] = [];
  let current: unknown = error;
  while (current !== undefined && current !== null && !chain.includes(current) && chain.length < 10) {
    chain.push(current);
    if (current instanceof AggregateError && current.errors.length > 0) {
      chain.push(...current.errors);
    }
    current = current instanceof Error ? current.cause : undefined;
  }
  return chain;
}

function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  const code = (error as { code: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * A description of an error and its causes, for humans. A configuration error's message already lists every
 * problem, so its validator output is left out.
 */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  for (const e of causeChain(error)) {
    const message = e instanceof Error ? e.message : String(e);
    if (message && !parts.some((p) => p.includes(message))) parts.push(message);
    if (e instanceof BatonError && e.code === 'CONFIG_INVALID') break;
  }
  return parts.join('\n  caused by: ') || 'unknown error';
}

/** Per backend: what to check when it is unreachable, and the setting that names its address. */
const addressHints: Readonly<Record<string, { text: string; setting: string }>> = {
  consul: {
    text: 'is the Consul agent running, and is CONSUL_HTTP_ADDR right?',
    setting: 'CONSUL_HTTP_ADDR',
  },
  dynamodb: {
    text: 'are AWS_REGION / AWS_ENDPOINT_URL_DYNAMODB and the network path to DynamoDB right?',
    setting: 'AWS_ENDPOINT_URL_DYNAMODB',
  },
  etcd: {
    text: 'is etcd running, and are ETCD_ENDPOINTS (or ETCDCTL_ENDPOINTS) right?',
    setting: 'ETCD_ENDPOINTS',
  },
  postgres: {
    text: 'is PostgreSQL running, and is DATABASE_URL (or PGHOST/PGPORT) right?',
    setting: 'DATABASE_URL',
  },
};

/**
 * A hint for an error whose exit code says "unreachable", naming the setting to check; none when the error's
 * own message already names it (the backends' messages do).
 */
export function hintFor(error: unknown): string | undefined {
  const { exitCode } = classifyError(error);
  if (exitCode !== ExitCode.UNAVAILABLE) return undefined;
  const baton = causeChain(error).find((e): e is BatonError => e instanceof BatonError);
  const hint = addressHints[baton?.backend ?? ''];
  if (!hint) return 'check that the server is running and its address is right.';
  return describeError(error).includes(hint.setting) ? undefined : hint.text;
}
