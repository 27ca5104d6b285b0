/**
 * How the workers of one task table take their tasks. Every worker of a table must use the table's layout:
 * fences of different lock keys are different counters, so a task claimed under a per-task lock and the
 * same task claimed under a bucket lease (or under a bucket of another size) cannot be compared.
 *
 * - `task`: one lock per task (`task/<id>`); the task's fence is that lock's fence.
 * - `bucket`: one lock per bucket of tasks; the bucket lease fences every write to its tasks, and each claim
 *   gets a token from the source that rises with every claim of the task.
 */
export type LeaseMode = 'task' | 'bucket';

/** The lease layout a task table is run with, as its source stores it. */
export interface LeaseLayout {
  readonly mode: LeaseMode;
  /** Number of buckets (bucket mode); `null` in task mode. */
  readonly buckets: number | null;
  /**
   * The lock backend whose fences the table's rows carry (`consul`, `dynamodb`, ...), or `null` when not
   * recorded. Fences of two backends are different counters: switching backends is a layout change.
   */
  readonly locks: string | null;
  /**
   * Rises every time the layout changes. Every fenced write carries the epoch its worker started with, and
   * the source refuses it once the layout has changed, so a worker of an older layout can write nothing.
   */
  readonly epoch: number;
}

/** The layout a worker asks for. */
export interface LeaseLayoutRequest {
  readonly mode: LeaseMode;
  /** Required in bucket mode: a power of two that divides the source's {@link BucketTaskSource.shards}. */
  readonly buckets?: number | undefined;
  /** The worker's lock backend (`LockProvider.backend`). */
  readonly locks?: string | undefined;
}

/** Guard passed with per-task writes: the layout epoch the worker started with. */
export interface LayoutGuard {
  readonly epoch: number;
}

/** True when `layout` is what `request` asks for (a layout that recorded no backend takes any). */
export function layoutMatches(layout: LeaseLayout, request: LeaseLayoutRequest): boolean {
  if (layout.mode !== request.mode) return false;
  if (request.mode === 'bucket' && layout.buckets !== request.buckets) return false;
  return layout.locks === null || request.locks === undefined || layout.locks === request.locks;
}

/** `task mode on consul`, `bucket mode with 64 buckets on dynamodb`: for messages. */
export function describeLayout(layout: LeaseLayout | LeaseLayoutRequest): string {
  const mode = layout.mode === 'bucket' ? `bucket mode with ${layout.buckets} buckets` : 'task mode';
  return layout.locks ? `${mode} on ${layout.locks} locks` : mode;
}
