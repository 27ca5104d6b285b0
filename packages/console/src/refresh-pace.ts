/**
 * The largest share of wall time the console's refresh loop may spend reading the database. On a big tasks
 * table a snapshot takes longer (about 140 ms at 1,000,000 rows on PostgreSQL 15, docs/console.md), and a
 * short `--refresh` would then keep a database core busy beside the workers; the loop waits longer instead.
 */
export const MAX_READ_SHARE = 0.1;

/**
 * How long the refresh loop waits after a read that took `lastReadMs` before the next one: the configured
 * `refreshMs`, or longer when that read was slow, so reads take at most {@link MAX_READ_SHARE} of the time.
 */
export function nextRefreshDelay(refreshMs: number, lastReadMs: number): number {
  const pace = Math.ceil(lastReadMs * (1 / MAX_READ_SHARE - 1));
  return Math.max(refreshMs, Number.isFinite(pace) ? pace : refreshMs);
}
