import { durationBounds } from '@baton/core';
import { z } from 'zod';

/** Bounds of the console's durations, for the schema below and the CLI's duration flags. */
export const consoleDurationBounds = {
  /** The shared refresh loop's interval. */
  refreshMs: durationBounds({ min: 250, max: 60_000 }),
} as const;

/**
 * The console's settings, declared once: the CLI's `baton console` parses its flags with this schema, so the
 * defaults and bounds below are the command's too.
 */
export const consoleOptionsSchema = z.object({
  /** TCP port; 0 picks a free one. */
  port: z.coerce.number().int().min(0).max(65_535).default(4680),
  /** Interface to listen on. Loopback by default: the console shows payloads and errors. */
  host: z.string().min(1).max(255).default('127.0.0.1'),
  /** How often the one shared refresh loop reads the database while pages are open (ms). */
  refreshMs: z.coerce
    .number()
    .int()
    .min(consoleDurationBounds.refreshMs.min)
    .max(consoleDurationBounds.refreshMs.max)
    .default(2_000),
  /**
   * How often the done/dead counts are recounted (ms). They need a scan of the whole table (no index may
   * mention status, see migrations.ts), so they are refreshed less often than the open counts.
   */
  finishedCountMs: z.coerce.number().int().min(250).max(3_600_000).default(30_000),
  /** Election keys whose leaders the console shows. */
  elections: z.array(z.string().min(1).max(512)).max(100).default([]),
  /** Lock key prefix listed in the locks view. */
  lockPrefix: z.string().max(512).default(''),
});

export type ConsoleOptions = z.output<typeof consoleOptionsSchema>;
export type ConsoleOptionsInput = z.input<typeof consoleOptionsSchema>;

/** Upper bounds of what one request or one snapshot reads. */
export const LIMITS = {
  /** Tasks per page of the task list. */
  pageSize: 200,
  /** Rows one list request walks (by primary key) looking for matches before it returns a cursor. */
  scanRows: 20_000,
  /** Locks listed per snapshot. */
  locks: 500,
  /** Keys whose line of waiters is read per snapshot (one read each, on backends with a line). */
  waiterKeys: 50,
  /** Waiters shown per key. */
  waitersPerKey: 20,
  /** Status × kind groups per snapshot. */
  countGroups: 1_000,
  /** Dead and failed tasks shown in the snapshot. */
  problems: 50,
  /** Workers shown in the snapshot. */
  workers: 200,
  /** Finished-tasks index entries read per status to count what retention removes next. */
  retentionScan: 10_000,
} as const;
