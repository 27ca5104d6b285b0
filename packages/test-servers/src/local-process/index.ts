import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';

/**
 * The executable `name` that a starter would run: `explicit` (an option or an environment variable) when
 * given, else the first `name` on the `PATH`, else `/usr/bin/<name>`; `undefined` when none is executable.
 */
export function findBinary(name: string, explicit: string | undefined): string | undefined {
  const candidates = explicit
    ? [explicit]
    : [
        ...(process.env.PATH ?? '')
          .split(delimiter)
          .filter(Boolean)
          .map((dir) => join(dir, name)),
        `/usr/bin/${name}`,
      ];
  return candidates.find((candidate) => {
    try {
      accessSync(candidate, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Decides whether tests that need a real server run: `true` when its binary was found. When it is missing,
 * warns (naming what to install) and returns `false`, so the caller skips; but when `CI` is set a missing
 * server is an error, never a silent skip.
 */
export function binaryAvailable(found: boolean, what: string, missing: string, installHint: string): boolean {
  if (found) return true;
  const message = `${what}: ${missing}. Fix: ${installHint}.`;
  if (process.env.CI) throw new Error(`${message} CI is set, so the tests fail instead of skipping.`);
  console.warn(`SKIPPED ${message}`);
  return false;
}

/** A free local TCP port (free when asked: a starter retries when another process takes it meanwhile). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** What {@link superviseServer} runs and how it knows the server is up. */
export interface ServerProcessSpec {
  /** Name in error messages, e.g. `etcd`. */
  readonly name: string;
  readonly binary: string;
  readonly args: readonly string[];
  /** True once the server answers. */
  readonly ready: () => Promise<boolean>;
  /** Pause between two `ready` checks, ms. */
  readonly pollMs: number;
  readonly startTimeoutMs: number;
}

/** One server process that can be started, stopped, killed and started again with the same arguments. */
export interface SupervisedServer {
  /** Starts the process and resolves once `ready`; rejects with its last output if it exits or times out. */
  start(): Promise<void>;
  /** Stops it with `signal` (SIGKILL after 5 s) and waits for the exit. Does nothing when not running. */
  stop(signal: NodeJS.Signals): Promise<void>;
  readonly pid: number | undefined;
}

/** Runs a local server process for tests, keeping the tail of its output for error messages. */
export function superviseServer(spec: ServerProcessSpec): SupervisedServer {
  let child: ChildProcess | undefined;
  return {
    get pid() {
      return child?.pid;
    },
    async start() {
      let output = '';
      const current = spawn(spec.binary, spec.args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child = current;
      const keep = (chunk: Buffer) => {
        output = (output + chunk.toString()).slice(-4_000);
      };
      current.stdout?.on('data', keep);
      current.stderr?.on('data', keep);
      const exited = new Promise<never>((_, reject) =>
        current.once('exit', (code, signal) =>
          reject(new Error(`${spec.name} exited during start (${signal ?? code}): ${output.trim()}`)),
        ),
      );
      exited.catch(() => undefined);
      const deadline = Date.now() + spec.startTimeoutMs;
      while (Date.now() < deadline) {
        if (await Promise.race([spec.ready(), exited])) return;
        await new Promise((resolve) => setTimeout(resolve, spec.pollMs));
      }
      current.kill('SIGKILL');
      throw new Error(`${spec.name} did not answer within ${spec.startTimeoutMs} ms: ${output.trim()}`);
    },
    async stop(signal) {
      const current = child;
      child = undefined;
      if (!current || current.exitCode !== null || current.signalCode !== null) return;
      const gone = new Promise<void>((resolve) => current.once('exit', () => resolve()));
      current.kill(signal);
      const timer = setTimeout(() => current.kill('SIGKILL'), 5_000);
      await gone;
      clearTimeout(timer);
    },
  };
}

/**
 * Calls `launch` with fresh free ports until one attempt starts (ports can be taken between choosing and
 * binding), at most four times; a fixed port is tried once. Runs `cleanup` when it gives up.
 */
export async function launchOnFreePorts<T>(
  fixedPort: number | undefined,
  launch: (port: number) => Promise<T>,
  cleanup: () => Promise<void>,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const port = fixedPort ?? (await freePort());
    try {
      return await launch(port);
    } catch (error) {
      if (attempt >= 3 || fixedPort !== undefined) {
        await cleanup();
        throw error;
      }
    }
  }
}
