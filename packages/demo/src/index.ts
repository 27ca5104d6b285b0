/**
 * baton's embedded demo, behind `baton demo` and `npm start`: it starts PGlite and a lock backend in its own
 * process (or a real etcd / redis-server from the machine's packages), runs workers over a batch of tasks,
 * and proves in the database that each task ran exactly once.
 *
 * It is a package of its own so that `@baton/cli` does not pull the embedded servers (`@baton/test-servers`) into
 * every installation: `baton demo` loads it when it is installed.
 */
export { DEMO_BACKENDS, type DemoBackend } from './embedded.js';
export { type DemoCheck, type DemoFlags, type DemoOutcome, type DemoRunOptions, runDemo } from './run.js';
