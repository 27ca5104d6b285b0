/**
 * The `baton` command line as a library: the program (for embedding or testing), exit codes, the handler
 * module loader and the Prometheus metrics of workers.
 */

export { classifyError, ExitCode, UsageError } from './classify-errors.js';
export { type ConfigFile, configFileSchema } from './config.js';
export { type LoadedHandler, loadHandlerModule } from './handler-module.js';
export { type MetricsServer, startMetricsServer, type TaskOutcome, WorkerMetrics } from './metrics.js';
export { createProgram, main } from './program.js';
