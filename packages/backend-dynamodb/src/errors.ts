import {
  type BatonError,
  InvalidArgumentError,
  PermissionDeniedError,
  ProtocolError,
  ResourceNotFoundError,
  redact,
  UnavailableError,
} from '@baton/core';

export const BACKEND = 'dynamodb';

/** IAM actions the lock operations need on the table. */
export const REQUIRED_ACTIONS = 'dynamodb:GetItem and dynamodb:UpdateItem';

const THROTTLING = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'LimitExceededException',
  'TooManyRequestsException',
]);

const SERVER_SIDE = new Set(['InternalServerError', 'ServiceUnavailable', 'InternalFailure']);

const PERMISSION = new Set([
  'AccessDeniedException',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'IncompleteSignatureException',
  'MissingAuthenticationTokenException',
  'ExpiredTokenException',
  'InvalidClientTokenId',
  'CredentialsProviderError',
]);

interface SdkErrorShape {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: number };
}

function shape(error: unknown): SdkErrorShape {
  return typeof error === 'object' && error !== null ? (error as SdkErrorShape) : {};
}

/**
 * True when the endpoint answered with something the SDK could not read as DynamoDB's JSON (an HTML page,
 * plain text): whatever listens there is not DynamoDB, dynalite or DynamoDB Local.
 */
export function isNotDynamoAnswer(error: unknown): boolean {
  const { name, message, $metadata } = shape(error);
  return (
    $metadata !== undefined &&
    (name === 'SyntaxError' || (typeof message === 'string' && message.includes('Deserialization error')))
  );
}

/** True for DynamoDB's "the condition expression evaluated to false". */
export function isConditionalFailure(error: unknown): boolean {
  return shape(error).name === 'ConditionalCheckFailedException';
}

/** True for DynamoDB's "table does not exist". */
export function isResourceNotFound(error: unknown): boolean {
  return shape(error).name === 'ResourceNotFoundException';
}

/**
 * True when trying the same request again may succeed: throttling, 5xx, and transport failures (no HTTP
 * status at all: connection refused or reset, timeouts).
 */
export function isTransient(error: unknown): boolean {
  const { name, $metadata } = shape(error);
  if (typeof name === 'string' && (THROTTLING.has(name) || SERVER_SIDE.has(name))) return true;
  const status = $metadata?.httpStatusCode;
  if (status === undefined) return typeof name !== 'string' || !PERMISSION.has(name);
  return status >= 500 || status === 429;
}

/** Where the error happened, for messages. */
export interface ErrorContext {
  operation: string;
  table: string;
  partitionKey: string;
}

/**
 * Maps an AWS SDK error to baton's hierarchy, keeping the SDK error as `cause`. Transient errors become
 * `UNAVAILABLE`; the caller decides whether to retry first.
 */
export function toBatonError(error: unknown, context: ErrorContext): BatonError {
  const { name, message } = shape(error);
  const detail = typeof message === 'string' && message !== '' ? `: ${redact(message)}` : '';
  const where = `DynamoDB ${context.operation} on table '${context.table}'`;
  const options = { cause: error, backend: BACKEND };
  if (isNotDynamoAnswer(error)) {
    // Unavailable rather than a config error: a proxy or load balancer answering with its own page during
    // an outage looks the same as a wrong endpoint, and the same setting may well work later.
    const status = shape(error).$metadata?.httpStatusCode;
    const firstLine = detail.split('\n')[0] ?? '';
    return new UnavailableError(
      `${where} failed: the endpoint answered${status === undefined ? '' : ` HTTP ${status}`} with something that ` +
        `is not DynamoDB (${String(name)}${firstLine}). Fix: check that AWS_ENDPOINT_URL_DYNAMODB (endpoint) points at ` +
        'DynamoDB, dynalite or DynamoDB Local (unset it for AWS), and that no proxy answers in its place.',
      options,
    );
  }
  if (isResourceNotFound(error)) {
    return new ResourceNotFoundError(
      `${where} failed: the table does not exist (in this region/endpoint). Fix: run \`baton dynamodb create-table\` ` +
        `or call ensureTable() on the provider (partition key '${context.partitionKey}', type S).`,
      options,
    );
  }
  if (typeof name === 'string' && PERMISSION.has(name)) {
    const credentials =
      name === 'CredentialsProviderError'
        ? ' No AWS credentials were found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY ' +
          '(any values work for a local endpoint), or run where an IAM role is available.'
        : '';
    return new PermissionDeniedError(
      `${where} was denied (${name})${detail}.${credentials} baton needs ${REQUIRED_ACTIONS} on ` +
        `arn:aws:dynamodb:<region>:<account>:table/${context.table}; dynamodb:Scan for list(), ` +
        'dynamodb:DescribeTable and dynamodb:CreateTable for ensureTable().',
      options,
    );
  }
  if (name === 'ValidationException') {
    return new InvalidArgumentError(
      `${where} was rejected as invalid${detail}. If the message mentions the key schema, the table's partition ` +
        `key is not '${context.partitionKey}' (type S): set BATON_DYNAMODB_PARTITION_KEY / partitionKey to match.`,
      options,
    );
  }
  if (isTransient(error)) {
    // No HTTP status: the request never got an answer (refused, unresolvable, reset, timed out).
    const unreached = shape(error).$metadata?.httpStatusCode === undefined;
    const hint = unreached
      ? '. Fix: check that DynamoDB is reachable at the configured endpoint (endpoint / ' +
        'AWS_ENDPOINT_URL_DYNAMODB, or the AWS endpoint of region / AWS_REGION)'
      : '';
    return new UnavailableError(
      `${where} failed (${String(name ?? 'transport error')})${detail}${hint}`,
      options,
    );
  }
  return new ProtocolError(
    `${where} failed unexpectedly (${String(name ?? 'unknown error')})${detail}`,
    options,
  );
}
