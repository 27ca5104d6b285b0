import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

// Child processes run the built CLI (`npm test` builds first; locally: `npm run build -w @baton/test-servers`).
const CLI = fileURLToPath(new URL('../dist/consul-server/cli.js', import.meta.url));

interface Running {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  readonly exited: Promise<number | null>;
}

const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

function run(args: string[]): Running {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build @baton/test-servers first (npm run build)`);
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const running: Running = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => child.on('close', (code) => resolve(code))),
  };
  child.stdout?.on('data', (chunk: Buffer) => {
    running.stdout += chunk.toString('utf8');
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    running.stderr += chunk.toString('utf8');
  });
  return running;
}

async function listeningUrl(running: Running): Promise<string> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const match = /consul test server listening on (http:\/\/127\.0\.0\.1:\d+)\n/.exec(running.stdout);
    if (match) return match[1]!;
    if (running.child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`server did not start: ${running.stdout}${running.stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

// Each test starts Node processes that load @baton/core: allow for a busy machine.
describe('baton-consul-test-server CLI', { timeout: 30_000 }, () => {
  it('serves with the given flags and exits cleanly on SIGTERM', async () => {
    const running = run(['--port', '0', '--ttl-min', '200ms', '--acl-token', 'one', '--acl-token', 'two']);
    const url = await listeningUrl(running);
    expect((await fetch(`${url}/v1/status/leader`)).status).toBe(200);
    const session = await fetch(`${url}/v1/session/create`, {
      method: 'PUT',
      headers: { 'X-Consul-Token': 'two' },
      body: JSON.stringify({ TTL: '200ms' }),
    });
    expect(session.status).toBe(200);
    expect((await fetch(`${url}/v1/kv/x`, { headers: { 'X-Consul-Token': 'three' } })).status).toBe(403);
    running.child.kill('SIGTERM');
    expect({ code: await running.exited, stderr: running.stderr }).toEqual({ code: 0, stderr: '' });
    expect(running.stdout).toContain('consul test server stopping (SIGTERM)');
  });

  it('exits cleanly on SIGINT', async () => {
    const running = run(['--port', '0']);
    await listeningUrl(running);
    running.child.kill('SIGINT');
    expect({ code: await running.exited, stderr: running.stderr }).toEqual({ code: 0, stderr: '' });
    expect(running.stdout).toContain('consul test server stopping (SIGINT)');
  });

  it('prints usage on --help and rejects bad flags with exit code 2', async () => {
    const help = run(['--help']);
    const bad = run(['--ttl-min', 'soon']);
    const unknown = run(['--bogus']);
    expect(await help.exited).toBe(0);
    expect(help.stdout).toContain('usage: baton-consul-test-server');
    expect(await bad.exited).toBe(2);
    expect(bad.stderr).toContain("--ttl-min: expected a duration such as 200ms or 10s, got 'soon'");
    expect(await unknown.exited).toBe(2);
  });
});
