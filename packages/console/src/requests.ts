import { z } from 'zod';
import { LIMITS } from './options.js';

const taskId = z
  .string()
  .regex(/^[1-9][0-9]{0,18}$/, 'must be a task id (a whole number from 1)')
  // zod runs refinements after a failed regex too: only compare what is a number.
  .refine(
    (id) => !/^[0-9]+$/.test(id) || BigInt(id) <= 9_223_372_036_854_775_807n,
    'is beyond the largest task id',
  );

export const STATUSES = ['pending', 'running', 'done', 'failed', 'dead'] as const;

/** `GET /api/tasks` query. */
export const listQuerySchema = z.strictObject({
  status: z.enum(STATUSES).optional(),
  kind: z.string().min(1).max(200).optional(),
  /** An id or an idempotency key: exact match. */
  q: z.string().min(1).max(500).optional(),
  before: taskId.optional(),
  limit: z.coerce.number().int().min(1).max(LIMITS.pageSize).default(50),
});

/** `/api/tasks/:id` path. */
export const taskParamsSchema = z.strictObject({ id: taskId });

/** A 400 body naming the first bad field. */
export function badRequest(error: z.ZodError): { error: string; field: string; message: string } {
  const issue = error.issues[0]!;
  const field = issue.path.length > 0 ? issue.path.map(String).join('.') : fieldOfUnknownKey(issue);
  return { error: 'bad request', field, message: `${field}: ${issue.message}` };
}

function fieldOfUnknownKey(issue: z.core.$ZodIssue): string {
  return issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : '(request)';
}

/** `POST /api/locks/release` body: the key, and `force: true` (the `--force` of `baton locks release`). */
export const releaseBodySchema = z.strictObject({
  key: z.string().min(1).max(1_024),
  force: z.literal(true, 'must be true: releasing a lock you do not hold is always forced'),
});
