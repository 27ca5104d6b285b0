import { hostname } from 'node:os';
import type { Clock } from '../clock.js';
import { InvalidArgumentError } from '../errors.js';
import type { LockHolder } from '../lock.js';
import type { CandidateInfo, JsonValue, LeaderInfo } from './types.js';

const reserved = ['term', 'sessionId'] as const;

/** The published part of a {@link LeaderInfo}: everything except what the lock itself provides. */
export type PublishedInfo = { id: string; startedAt: string } & { [extra: string]: JsonValue | undefined };

/** Fills a candidate's defaults (`id`, `host`, `startedAt`) and validates it. */
export function candidateDefaults(
  value: CandidateInfo | undefined,
  sessionId: string,
  clock: Clock,
): PublishedInfo {
  const given = definedFields(value ?? {});
  return {
    id: sessionId,
    host: hostname(),
    startedAt: new Date(clock.wallNow()).toISOString(),
    ...given,
  } as PublishedInfo;
}

/**
 * Applies a `proclaim` update: given fields replace the published ones; `undefined` removes a field, except
 * `id` and `startedAt`, which keep their value.
 */
export function mergeInfo(current: LeaderInfo, update: CandidateInfo): PublishedInfo {
  checkFields(update);
  const next: Record<string, JsonValue | undefined> = { ...current };
  for (const name of reserved) delete next[name];
  for (const [name, field] of Object.entries(update)) {
    if (field === undefined) {
      if (name !== 'id' && name !== 'startedAt') delete next[name];
    } else {
      next[name] = field;
    }
  }
  return next as PublishedInfo;
}

/** The lock value a candidate publishes: its fields as a JSON object, `id` first. */
export function encodeLeaderValue(info: PublishedInfo): string {
  const { id, ...rest } = info;
  try {
    return JSON.stringify({ id, ...rest });
  } catch (cause) {
    throw new InvalidArgumentError('leader info must be JSON-serializable', { cause });
  }
}

/**
 * Reads a lock holder as an election leader. `term` and `sessionId` always come from the lock. A holder that
 * did not publish election JSON (a plain lock taken on the election key) is reported with its session id as
 * `id`, an empty `startedAt` and its raw value as `value`.
 */
export function decodeLeaderInfo(holder: LockHolder): LeaderInfo {
  const parsed = parseObject(holder.value);
  if (parsed && typeof parsed.id === 'string') {
    return withLock(
      { ...parsed, id: parsed.id, startedAt: typeof parsed.startedAt === 'string' ? parsed.startedAt : '' },
      holder.fence,
      holder.sessionId,
    );
  }
  const foreign: PublishedInfo = { id: holder.sessionId, startedAt: '' };
  if (holder.value !== undefined) foreign.value = holder.value;
  return withLock(foreign, holder.fence, holder.sessionId);
}

/** Adds the lock-derived fields to published info. */
export function withLock(info: PublishedInfo, term: number, sessionId: string): LeaderInfo {
  return { ...info, term, sessionId };
}

function definedFields(value: CandidateInfo): Record<string, JsonValue> {
  checkFields(value);
  const out: Record<string, JsonValue> = {};
  for (const [name, field] of Object.entries(value)) if (field !== undefined) out[name] = field;
  return out;
}

function checkFields(value: CandidateInfo): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError('leader info must be a plain object');
  }
  for (const name of reserved) {
    if (value[name] !== undefined) {
      throw new InvalidArgumentError(`leader info field '${name}' is reserved: it comes from the lock`);
    }
  }
  for (const name of ['id', 'host', 'address', 'startedAt'] as const) {
    const field = value[name];
    if (field !== undefined && typeof field !== 'string') {
      throw new InvalidArgumentError(`leader info field '${name}' must be a string, got ${typeof field}`);
    }
  }
  if (value.id === '') throw new InvalidArgumentError("leader info field 'id' must not be empty");
}

function parseObject(value: string | undefined): Record<string, JsonValue> | undefined {
  if (value === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(value);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Record<string, JsonValue>)
      : undefined;
  } catch {
    return undefined;
  }
}
