import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The built `baton` binary of `@baton/cli`: the demo runs as users run it, `baton demo`. */
const BIN = fileURLToPath(import.meta.resolve('@baton/cli/bin'));

if (!existsSync(BIN)) throw new Error(`${BIN} is missing: build first (npm run build)`);

/** Variables of the developer's shell that would change what the binary does. */
const FOREIGN = /^(BATON_|CONSUL_|AWS_|PG[A-Z]+$|DATABASE_URL$)/;

/** What a finished run printed and returned. */
export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `baton <args>` to completion (killed and rejected after `timeoutMs`). */
export function baton(args: string[], options: { timeoutMs: number }): Promise<RunResult> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !FOREIGN.test(key)) env[key] = value;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`baton ${args.join(' ')} did not finish in ${options.timeoutMs} ms\n${stdout}\n${stderr}`),
      );
    }, options.timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
