import { redact } from '@baton/core';
import pino, { type Logger } from 'pino';
import type { LogLevel } from './log-levels.js';

/**
 * A pino logger writing JSON lines to `fd` (stdout by default) synchronously, so that nothing is lost when
 * the process exits right after a fatal error. Every line passes through `redact()`: no secret baton knows
 * of reaches the log, whatever the level and whatever a handler's error says.
 */
export function createLogger(level: LogLevel, options: { fd?: number; name?: string } = {}): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid, ...(options.name ? { name: options.name } : {}) },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      hooks: { streamWrite: redact },
    },
    pino.destination({ dest: options.fd ?? 1, sync: true }),
  );
}

export type { Logger };
