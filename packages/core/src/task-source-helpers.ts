import { InvalidArgumentError } from './errors.js';

/**
 * Checks a fencing token handed to a {@link TaskSource} write: a non-negative safe integer, else
 * `INVALID_ARGUMENT`. Shared by the sources so that every one rejects the same inputs the same way.
 */
export function checkFence(fence: number): void {
  if (!Number.isSafeInteger(fence) || fence < 0) {
    throw new InvalidArgumentError(`fence must be a non-negative safe integer, got ${String(fence)}`);
  }
}

/**
 * `JSON.stringify(value)`, or `INVALID_ARGUMENT` naming `what` when the value cannot be stored as JSON (a
 * cycle, a BigInt, a bare function or `undefined`).
 */
export function jsonText(value: unknown, what: string): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (error) {
    throw new InvalidArgumentError(`${what} is not JSON-serialisable`, { cause: error });
  }
  if (json === undefined) throw new InvalidArgumentError(`${what} is not JSON-serialisable`);
  return json;
}
