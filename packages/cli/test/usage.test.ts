import { spawn } from 'node:child_process';
import { startConsulTestServer } from '@baton/test-servers/consul-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, baton, closedPort, tempFiles } from './helpers.js';

const COMMANDS = [
  [],
  ['worker'],
  ['tasks'],
  ['tasks', 'enqueue'],
  ['tasks', 'list'],
  ['tasks', 'stats'],
  ['tasks', 'retry'],
  ['migrate'],
  ['locks'],
  ['locks', 'list'],
  ['locks', 'show'],
  ['locks', 'release'],
  ['leader'],
  ['leader', 'show'],
  ['leader', 'watch'],
  ['dynamodb', 'create-table'],
  ['demo'],
];

describe.concurrent('help', () => {
  it.each(COMMANDS.map((path) => [path.join(' ') || '(root)', path] as const))(
    'baton %s --help describes the command and exits 0',
    async (_name, path) => {
      const result = await baton([...path, '--help']);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('Usage: baton');
      expect(result.stdout).toContain('--json');
    },
  );

  it('documents the exit codes', async () => {
    const { stdout } = await baton(['--help']);
    for (const code of ['0 ', '1 ', '2 ', '3 ', '4 ']) expect(stdout).toContain(`  ${code}`);
    expect(stdout).toContain('130  stopped by SIGINT, 143 stopped by SIGTERM');
  });

  it('a reader that closes the pipe early (baton --help | head -1) ends it quietly, exit 0', async () => {
    const child = spawn(process.execPath, [BIN, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const code = await new Promise((resolve) => child.once('close', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });
});

describe.concurrent('usage errors exit 2 with a message naming the problem', () => {
  let files: Awaited<ReturnType<typeof tempFiles>>;
  beforeAll(async () => {
    files = await tempFiles({
      'no-function.mjs': 'export const answer = 42;\n',
      'bad-kinds.mjs': "export const kinds = { email: 'not a function' };\n",
      'syntax.mjs': 'export default function (\n',
      'ok.mjs': 'export default async () => ({ ok: true });\n',
      'with-leader.mjs': 'export default async () => 1;\nexport async function leader() {}\n',
      'bad-leader.mjs': "export default async () => 1;\nexport const leader = 'me';\n",
      'bad-config.json': JSON.stringify({ worker: { concurrency: 'lots' } }),
      'not-json.json': '{ nope',
    });
  });
  afterAll(() => files?.cleanup());

  it('an unknown flag', async () => {
    const result = await baton(['tasks', 'stats', '--frobnicate']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("unknown option '--frobnicate'");
  });

  it('an unknown command', async () => {
    const result = await baton(['frobnicate']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/unknown command 'frobnicate'/);
  });

  it('no command at all', async () => {
    const result = await baton([]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Usage: baton');
  });

  it('a missing handler file', async () => {
    const result = await baton(['worker', '--handler', './nope.mjs'], { cwd: files.dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--handler: no such file');
    expect(result.stderr).toContain('nope.mjs');
  });

  it('a handler module without a function', async () => {
    const result = await baton(['worker', '--handler', './no-function.mjs'], { cwd: files.dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('does not export a function');
    expect(result.stderr).toContain('answer (a number)');
  });

  it('a kinds map with something that is not a function', async () => {
    const result = await baton(['worker', '--handler', './bad-kinds.mjs'], { cwd: files.dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('kinds.email is a string, expected a function');
  });

  it('a handler module that does not load', async () => {
    const result = await baton(['worker', '--handler', './syntax.mjs'], { cwd: files.dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('could not be loaded');
  });

  it('no handler at all', async () => {
    const result = await baton(['worker']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('no handler');
  });

  it('a leader export without --leader-key, and --leader-key without a leader export', async () => {
    const noKey = await baton(['worker', '--handler', './with-leader.mjs'], { cwd: files.dir });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain('exports `leader`, but no election key was given');
    expect(noKey.stderr).toContain('Fix: --leader-key');
    const noExport = await baton(['worker', '--handler', './ok.mjs', '--leader-key', 'leader/x'], {
      cwd: files.dir,
    });
    expect(noExport.code).toBe(2);
    expect(noExport.stderr).toContain('--leader-key: ');
    expect(noExport.stderr).toContain('has no `leader` export');
  });

  it('a leader export that is not a function, and a bad leader key', async () => {
    const notFn = await baton(['worker', '--handler', './bad-leader.mjs', '--leader-key', 'leader/x'], {
      cwd: files.dir,
    });
    expect(notFn.code).toBe(2);
    expect(notFn.stderr).toContain('exports `leader` as a string, expected a function');
    const badKey = await baton(
      ['worker', '--handler', './with-leader.mjs', '--leader-key', 'k'.repeat(600)],
      {
        cwd: files.dir,
      },
    );
    expect(badKey.code).toBe(2);
    expect(badKey.stderr).toContain('--leader-key: ');
  });

  it('conflicting schedules', async () => {
    const result = await baton(['worker', '--handler', './ok.mjs', '--once', '--every', '1m'], {
      cwd: files.dir,
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--every and --once cannot be combined');
  });

  it('a bad flag value', async () => {
    const result = await baton(['worker', '--handler', './ok.mjs', '--concurrency', 'many'], {
      cwd: files.dir,
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("option '--concurrency <n>' argument 'many' is invalid");
  });

  it('a bad environment value names the variable and the fix', async () => {
    const result = await baton(['worker', '--handler', './ok.mjs', '--once'], {
      cwd: files.dir,
      env: { BATON_SESSION_TTL: 'soon', DATABASE_URL: 'postgres://u@127.0.0.1:1/db' },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('BATON_SESSION_TTL');
    expect(result.stderr).toContain('got "soon"');
    expect(result.stderr).toContain('Fix: set BATON_SESSION_TTL to');
  });

  it('a bad environment value as JSON on stderr with --json', async () => {
    const result = await baton(['--json', 'locks', 'show', 'k'], {
      env: { BATON_BACKEND: 'consul', BATON_SESSION_TTL: 'soon' },
    });
    expect(result.code).toBe(2);
    const { error } = JSON.parse(result.stderr) as { error: Record<string, unknown> };
    expect(error).toMatchObject({ code: 'CONFIG_INVALID', exitCode: 2, field: 'BATON_SESSION_TTL' });
  });

  it('an unknown backend', async () => {
    const result = await baton(['locks', 'list'], { env: { BATON_BACKEND: 'zookeeper' } });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("unknown backend 'zookeeper'");
  });

  it('an invalid config file names the field', async () => {
    const result = await baton(['worker', '--config', 'bad-config.json', '--handler', './ok.mjs'], {
      cwd: files.dir,
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('worker.concurrency');
    expect(result.stderr).toContain('bad-config.json');
  });

  it('a config file that is not JSON', async () => {
    const result = await baton(['tasks', 'stats'], {
      cwd: files.dir,
      env: { BATON_CONFIG: 'not-json.json' },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('BATON_CONFIG');
    expect(result.stderr).toContain('is not valid JSON');
  });

  it('a payload that is not JSON is refused before connecting', async () => {
    const result = await baton(['tasks', 'enqueue', 'email', '--payload', '{oops'], {
      env: { DATABASE_URL: 'postgres://u@127.0.0.1:1/db' },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('expected JSON');
  });

  it('no database configured', async () => {
    const result = await baton(['tasks', 'stats']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('DATABASE_URL');
  });

  it('lock commands refuse the process-local memory backend', async () => {
    const result = await baton(['locks', 'list']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('memory backend keeps its locks inside one process');
  });

  it('locks release needs --force and then an explicit confirmation, and explains why', async () => {
    const withoutForce = await baton(['locks', 'release', 'task/1'], { env: { BATON_BACKEND: 'consul' } });
    expect(withoutForce.code).toBe(2);
    expect(withoutForce.stderr).toContain('needs --force');
    const withoutConfirmation = await baton(['locks', 'release', '--force', 'task/1'], {
      env: { BATON_BACKEND: 'consul' },
    });
    expect(withoutConfirmation.code).toBe(2);
    expect(withoutConfirmation.stderr).toContain('keeps believing it holds the lock');
    expect(withoutConfirmation.stderr).toContain('fenced writes stay valid until someone else acquires');
    expect(withoutConfirmation.stderr).toContain('nothing was released');
  });

  it('demo refuses a backend it cannot embed', async () => {
    const result = await baton(['demo', '--backend', 'zookeeper']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('cannot be embedded');
  });
});

describe.concurrent('unreachable servers exit 3 with a hint', () => {
  it('Consul on a closed port', async () => {
    const port = await closedPort();
    const result = await baton(['locks', 'list'], {
      env: { BATON_BACKEND: 'consul', CONSUL_HTTP_ADDR: `127.0.0.1:${port}`, BATON_CONSUL_TIMEOUT: '2s' },
    });
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('ECONNREFUSED');
    expect(result.stderr).toContain('CONSUL_HTTP_ADDR');
  });

  it('PostgreSQL on a closed port', async () => {
    const port = await closedPort();
    const result = await baton(['tasks', 'stats'], {
      env: { DATABASE_URL: `postgres://u@127.0.0.1:${port}/db` },
    });
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('ECONNREFUSED');
    expect(result.stderr).toContain('DATABASE_URL');
  });

  it('a worker whose database is unreachable never starts', async () => {
    const files = await tempFiles({ 'ok.mjs': 'export default async () => 1;\n' });
    try {
      const port = await closedPort();
      const result = await baton(['worker', '--handler', './ok.mjs'], {
        cwd: files.dir,
        env: { DATABASE_URL: `postgres://u@127.0.0.1:${port}/db` },
      });
      expect(result.code).toBe(3);
      expect(result.stdout).not.toContain('worker started');
    } finally {
      await files.cleanup();
    }
  });
});

describe.concurrent('permission denied exits 4', () => {
  let server: Awaited<ReturnType<typeof startConsulTestServer>>;
  beforeAll(async () => {
    server = await startConsulTestServer({ aclTokens: ['the-right-token'] });
  });
  afterAll(() => server?.close());

  it('a Consul token the agent does not know', async () => {
    const result = await baton(['locks', 'list'], {
      env: { BATON_BACKEND: 'consul', CONSUL_HTTP_ADDR: server.url, CONSUL_HTTP_TOKEN: 'wrong' },
    });
    expect(result.code).toBe(4);
    expect(result.stderr).not.toContain('wrong');
  });

  it('the right token works', async () => {
    const result = await baton(['locks', 'list', '--json'], {
      env: { BATON_BACKEND: 'consul', CONSUL_HTTP_ADDR: server.url, CONSUL_HTTP_TOKEN: 'the-right-token' },
    });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual([]);
  });
});
