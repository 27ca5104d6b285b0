export type { ActionLogEntry } from './app.js';
export { CONTENT_SECURITY_POLICY } from './app.js';
export { MIN_TOKEN_LENGTH } from './auth.js';
export { type ConsoleDatabase, openConsoleDatabase } from './database.js';
export type { LeaderRow, LockRow, LocksView, SemaphoreRow } from './locks-view.js';
export {
  type ConsoleOptions,
  type ConsoleOptionsInput,
  consoleDurationBounds,
  consoleOptionsSchema,
  LIMITS,
} from './options.js';
export type { CountRow, MinuteRow, TaskPage, TaskSummary } from './queries.js';
export { type RunningConsole, type StartConsoleOptions, startConsole } from './server.js';
export type { Refresher, RefreshFailure, Snapshot } from './snapshot.js';
export type { RetentionDue, RetentionSettings, StorageView } from './storage.js';
export { SILENT_AFTER_INTERVALS, type WorkerRow, type WorkerState } from './workers-view.js';
