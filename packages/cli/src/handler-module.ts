import { stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  invalidTask,
  type LeaderTask,
  MAX_SEMAPHORE_LIMIT,
  type TaskContext,
  type TaskHandler,
} from '@baton/core';
import { UsageError } from './classify-errors.js';

/** A handler module, loaded and checked. */
export interface LoadedHandler {
  /** The function the worker calls for every task (dispatching on `kinds` when the module has a map). */
  handler: TaskHandler;
  /** Kinds the module handles, when it exports a `kinds` map (the worker then only takes those). */
  kinds: readonly string[] | undefined;
  /** Absolute path of the module. */
  path: string;
  /** The module's `leader` export: what the elected worker runs (`baton worker --leader-key`). */
  leader: LeaderTask | undefined;
  /** The module's `limits` export: per-kind concurrency limits (`--limit` and `worker.limits` win over it). */
  limits: Readonly<Record<string, number>> | undefined;
}

type HandlerFn = (context: TaskContext) => unknown;

/**
 * Loads a handler module and checks its shape before anything connects. The module must export a function
 * (`export default async function (ctx) {…}` or `export async function handler(ctx) {…}`), or a `kinds`
 * map from task kind to function, or both (the map wins for its kinds, the function handles the rest). It may
 * also export `leader`, the function the one elected worker runs, and `limits`, cluster-wide concurrency limits
 * per task kind (`export const limits = { 'call-partner-api': 3 }`).
 *
 * Throws a {@link UsageError} (exit 2) when the file is missing, fails to load, or exports no function.
 */
export async function loadHandlerModule(specifier: string, cwd = process.cwd()): Promise<LoadedHandler> {
  const path = isAbsolute(specifier) ? specifier : resolve(cwd, specifier);
  const info = await stat(path).catch(() => undefined);
  if (!info) {
    throw new UsageError(`--handler: no such file: ${path}. Fix: pass the path of a .js/.mjs module.`, {
      field: '--handler',
    });
  }
  if (!info.isFile()) {
    throw new UsageError(`--handler: ${path} is not a file`, { field: '--handler' });
  }
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new UsageError(`--handler: ${path} could not be loaded: ${reason}`, { field: '--handler', cause });
  }
  // A CommonJS module arrives as { default: module.exports }.
  const nested = isRecord(module.default) ? module.default : undefined;
  const fn = pickFunction(module.default) ?? pickFunction(module.handler) ?? pickFunction(nested?.handler);
  const kindsExport = module.kinds ?? nested?.kinds;
  const leaderExport = module.leader ?? nested?.leader;
  if (leaderExport !== undefined && typeof leaderExport !== 'function') {
    throw new UsageError(
      `--handler: ${path} exports \`leader\` as ${describeType(leaderExport)}, expected a function ` +
        '(leadership) => Promise<void> that returns once leadership.signal aborts',
      { field: '--handler' },
    );
  }
  const leader = leaderExport as LeaderTask | undefined;
  const limits = limitsOf(module.limits ?? nested?.limits, path);
  let kinds: Map<string, HandlerFn> | undefined;
  if (kindsExport !== undefined) {
    if (!isRecord(kindsExport)) {
      throw new UsageError(
        `--handler: ${path} exports \`kinds\`, but it is not an object mapping task kinds to functions`,
        { field: '--handler' },
      );
    }
    kinds = new Map();
    for (const [kind, value] of Object.entries(kindsExport)) {
      if (typeof value !== 'function') {
        throw new UsageError(
          `--handler: ${path}: kinds.${kind} is ${describeType(value)}, expected a function (ctx) => result`,
          { field: '--handler' },
        );
      }
      kinds.set(kind, value as HandlerFn);
    }
    if (kinds.size === 0 && !fn) {
      throw new UsageError(`--handler: ${path} exports an empty \`kinds\` map and no handler function`, {
        field: '--handler',
      });
    }
  }
  if (!fn && !kinds) {
    const exported = Object.keys(module).filter((k) => k !== '__esModule');
    throw new UsageError(
      `--handler: ${path} does not export a function. It exports ${
        exported.length ? exported.map((k) => `${k} (${describeType(module[k])})`).join(', ') : 'nothing'
      }. Fix: \`export default async function ({ task, fence, signal }) { … }\`, ` +
        '`export async function handler(ctx) { … }`, or `export const kinds = { email: sendEmail }`.',
      { field: '--handler' },
    );
  }
  if (!kinds) return { handler: fn!, kinds: undefined, path, leader, limits };
  const byKind = kinds;
  const handler: TaskHandler = (context) => {
    const own = byKind.get(context.task.kind);
    if (own) return own(context);
    if (fn) return fn(context);
    throw invalidTask(`no handler for task kind '${context.task.kind}' in ${path}`);
  };
  // With only a map, the worker takes just those kinds; a fallback function means every kind.
  return { handler, kinds: fn ? undefined : [...byKind.keys()], path, leader, limits };
}

/** The `limits` export, checked: an object of task kind to a whole number from 1 to the semaphore maximum. */
function limitsOf(value: unknown, path: string): Readonly<Record<string, number>> | undefined {
  if (value === undefined) return undefined;
  if (!isRecord(value)) {
    throw new UsageError(
      `--handler: ${path} exports \`limits\` as ${describeType(value)}, expected an object of task kind to ` +
        "limit, e.g. export const limits = { 'call-partner-api': 3 }",
      { field: '--handler' },
    );
  }
  for (const [kind, limit] of Object.entries(value)) {
    if (!Number.isInteger(limit) || (limit as number) < 1 || (limit as number) > MAX_SEMAPHORE_LIMIT) {
      throw new UsageError(
        `--handler: ${path}: limits.${kind} is ${JSON.stringify(limit)}, expected a whole number from 1 to ` +
          `${MAX_SEMAPHORE_LIMIT}`,
        { field: '--handler' },
      );
    }
  }
  return value as Record<string, number>;
}

function pickFunction(value: unknown): HandlerFn | undefined {
  return typeof value === 'function' ? (value as HandlerFn) : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
