import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type ConsulTestServer, startConsulTestServer } from '@baton/test-servers/consul-server';
import { type PgliteServer, startPglite } from '@baton/test-servers/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baton, closedPort, tempFiles, uniqueSchema } from './helpers.js';

/**
 * Issue 13, findings 6 and 8 and the low ones about configuration and connections: one row each, with the
 * exit code and what the message must (and must not) say. Text and --json.
 */
interface Servers {
  db: PgliteServer;
  /** A Consul-compatible agent with ACLs on; RIGHT is its token. */
  consul: ConsulTestServer;
  html: string;
  closed: number;
  dir: string;
  realPg: string | undefined;
}

interface Row {
  finding: string;
  args: (s: Servers) => string[];
  env?: (s: Servers) => Record<string, string>;
  exit: number;
  /** What stderr (the error, or a warning) says. */
  stderr?: RegExp;
  notStderr?: RegExp;
  /** What stdout (the worker's log) says. */
  stdout?: RegExp;
  /** Longest acceptable stderr, for findings about what is echoed. */
  maxStderr?: number;
  skip?: (s: Servers) => boolean;
}

const RIGHT = 'config-right-token-2b7d';
const HUGE_KEY = `k${'x'.repeat(10_239)}`;

const consulEnv = (s: Servers, extra: Record<string, string> = {}) => ({
  BATON_BACKEND: 'consul',
  CONSUL_HTTP_ADDR: s.consul.url,
  ...extra,
});

const rows: Row[] = [
  {
    finding: '6: BATON_BACKEND_MODULE with a syntax error shows the error, and no npm install',
    args: () => ['locks', 'list'],
    env: (s) => ({ BATON_BACKEND: 'custom', BATON_BACKEND_MODULE: join(s.dir, 'syntax.mjs') }),
    exit: 2,
    stderr: /BATON_BACKEND_MODULE: .*could not be loaded: SyntaxError: /,
    notStderr: /npm install/,
  },
  {
    finding: "6: BATON_BACKEND_MODULE whose own import fails shows that import's error, and no npm install",
    args: () => ['locks', 'list'],
    env: (s) => ({
      BATON_BACKEND: 'custom',
      BATON_BACKEND_MODULE: pathToFileURL(join(s.dir, 'imports.mjs')).href,
    }),
    exit: 2,
    stderr: /could not be loaded: Cannot find package 'baton-missing-dependency-4d1c'/,
    notStderr: /npm install/,
  },
  {
    finding: '6: a relative BATON_BACKEND_MODULE that does not exist says so, and no npm install',
    args: () => ['locks', 'list'],
    env: () => ({ BATON_BACKEND: 'custom', BATON_BACKEND_MODULE: './no-such-backend.mjs' }),
    exit: 2,
    stderr: /there is no such file/,
    notStderr: /npm install/,
  },
  {
    finding: '6: a BATON_BACKEND_MODULE package that is not installed suggests npm install',
    args: () => ['locks', 'list'],
    env: () => ({ BATON_BACKEND: 'custom', BATON_BACKEND_MODULE: 'baton-no-such-backend-7f3a' }),
    exit: 2,
    stderr: /Fix: npm install baton-no-such-backend-7f3a/,
  },
  {
    finding: '8: AWS_ENDPOINT_URL_DYNAMODB at an HTTP server answering HTML: exit 3 naming the variable',
    args: () => ['locks', 'show', 'k'],
    env: (s) => ({
      BATON_BACKEND: 'dynamodb',
      AWS_ENDPOINT_URL_DYNAMODB: s.html,
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
    }),
    exit: 3,
    stderr: /answered HTTP 200 with something that is not DynamoDB.*AWS_ENDPOINT_URL_DYNAMODB/,
  },
  {
    finding: 'low: port 99999 in DATABASE_URL is a config error (exit 2), not "unreachable"',
    args: () => ['tasks', 'list'],
    env: () => ({ DATABASE_URL: 'postgres://app:pw@127.0.0.1:99999/app' }),
    exit: 2,
    stderr: /DATABASE_URL: port "99999" is out of range/,
  },
  {
    finding: 'low: sslmode=banana in DATABASE_URL is a config error (exit 2)',
    args: () => ['tasks', 'list'],
    env: () => ({ DATABASE_URL: 'postgres://app:pw@127.0.0.1:5432/app?sslmode=banana' }),
    exit: 2,
    stderr: /DATABASE_URL: sslmode "banana" is not an SSL mode/,
  },
  {
    finding: "low: AWS_REGION='us east!!' is a config error (exit 2)",
    args: () => ['locks', 'list'],
    env: () => ({ BATON_BACKEND: 'dynamodb', AWS_REGION: 'us east!!' }),
    exit: 2,
    stderr: /AWS_REGION: expected an AWS region name/,
  },
  {
    finding: 'low: a CR/LF in CONSUL_HTTP_TOKEN names CONSUL_HTTP_TOKEN, not CONSUL_HTTP_ADDR',
    args: () => ['locks', 'list'],
    env: (s) => consulEnv(s, { CONSUL_HTTP_TOKEN: `${RIGHT}\r\n` }),
    exit: 2,
    stderr: /CONSUL_HTTP_TOKEN: contains a line break/,
    notStderr: /CONSUL_HTTP_ADDR/,
  },
  {
    finding: 'low: a wrong token read from CONSUL_HTTP_TOKEN_FILE names CONSUL_HTTP_TOKEN_FILE',
    args: () => ['locks', 'show', 'k'],
    env: (s) => consulEnv(s, { CONSUL_HTTP_TOKEN_FILE: join(s.dir, 'wrong-token') }),
    exit: 4,
    stderr: /check CONSUL_HTTP_TOKEN_FILE/,
    notStderr: /check CONSUL_HTTP_TOKEN[^_]/,
  },
  {
    finding: 'low: an empty token file is an error, not silently "no token"',
    args: () => ['locks', 'list'],
    env: (s) => consulEnv(s, { CONSUL_HTTP_TOKEN_FILE: join(s.dir, 'empty-token') }),
    exit: 2,
    stderr: /CONSUL_HTTP_TOKEN_FILE.*is empty/,
  },
  {
    finding: 'low: CONSUL_HTTP_TOKEN_FILE and CONSUL_HTTP_TOKEN both set: a warning says the file wins',
    args: () => ['locks', 'show', 'k'],
    env: (s) =>
      consulEnv(s, { CONSUL_HTTP_TOKEN_FILE: join(s.dir, 'right-token'), CONSUL_HTTP_TOKEN: 'other' }),
    exit: 0,
    stderr:
      /both CONSUL_HTTP_TOKEN_FILE .* and CONSUL_HTTP_TOKEN are set: using the token in CONSUL_HTTP_TOKEN_FILE/,
  },
  {
    finding: 'low: a missing database says it does not exist and how to create it, not "run the migrations"',
    args: () => ['tasks', 'list'],
    env: (s) => {
      const url = new URL(s.realPg ?? 'postgres://x');
      url.pathname = '/baton_missing_db_3e';
      return { DATABASE_URL: url.toString() };
    },
    exit: 2,
    stderr: /database "baton_missing_db_3e" does not exist.*Fix: create it \(createdb baton_missing_db_3e/,
    notStderr: /run the migrations/,
    skip: (s) => !s.realPg,
  },
  {
    finding: 'low: the Consul preflight error names baton/preflight, not baton/baton/preflight',
    args: (s) => ['worker', '--handler', join(s.dir, 'ok.mjs'), '--once'],
    env: (s) => ({
      ...consulEnv(s),
      DATABASE_URL: s.db.connectionString,
      BATON_PG_SCHEMA: uniqueSchema('cfg'),
    }),
    exit: 4,
    stderr: /read 'baton\/preflight' failed/,
    notStderr: /baton\/baton\//,
  },
  {
    finding: 'low: tasks stats against an unreachable database says "cannot connect", not "migrate failed"',
    args: () => ['tasks', 'stats'],
    env: (s) => ({ DATABASE_URL: `postgres://app@127.0.0.1:${s.closed}/app` }),
    exit: 3,
    stderr: /postgres: cannot connect to the database: .*ECONNREFUSED/,
    notStderr: /migrate/,
  },
  {
    finding: 'low: a 10 KB lock key is not echoed whole (locks show)',
    args: () => ['locks', 'show', HUGE_KEY],
    env: (s) => consulEnv(s, { CONSUL_HTTP_TOKEN: RIGHT }),
    exit: 2,
    stderr: /<key>: expected a non-empty key of at most 512 characters.*\(10240 characters\)/,
    maxStderr: 600,
  },
  {
    finding: 'low: a 10 KB lock key is not echoed whole (worker --leader-key)',
    args: (s) => ['worker', '--handler', join(s.dir, 'leader.mjs'), '--leader-key', HUGE_KEY, '--once'],
    exit: 2,
    stderr: /--leader-key: lock key must be .*\(10240 characters\)/,
    maxStderr: 600,
  },
  {
    finding: 'low: BATON_BACKEND_MODULE with BATON_BACKEND unset is not silently ignored',
    args: (s) => ['worker', '--handler', join(s.dir, 'ok.mjs'), '--once'],
    env: (s) => ({
      BATON_BACKEND_MODULE: 'some-backend',
      DATABASE_URL: s.db.connectionString,
      BATON_PG_SCHEMA: uniqueSchema('cfg'),
    }),
    exit: 0,
    stdout:
      /"field":"BATON_BACKEND_MODULE".*BATON_BACKEND_MODULE is set \(some-backend\) but the backend is memory \(BATON_BACKEND is unset\)/,
  },
  {
    finding: 'low: BATON_BACKEND_MODULE with BATON_BACKEND=memory is not silently ignored',
    args: (s) => ['worker', '--handler', join(s.dir, 'ok.mjs'), '--once'],
    env: (s) => ({
      BATON_BACKEND: 'memory',
      BATON_BACKEND_MODULE: 'some-backend',
      DATABASE_URL: s.db.connectionString,
      BATON_PG_SCHEMA: uniqueSchema('cfg'),
    }),
    exit: 0,
    stdout:
      /"level":"warn".*BATON_BACKEND_MODULE is set \(some-backend\) but the backend is memory, so the module is not loaded/,
  },
];

let servers: Servers;
let files: Awaited<ReturnType<typeof tempFiles>>;
let htmlServer: Server;

beforeAll(async () => {
  htmlServer = createServer((request, response) => {
    request.resume();
    response.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>Welcome</title>');
  });
  await new Promise<void>((resolve) => htmlServer.listen(0, '127.0.0.1', resolve));
  let db: PgliteServer;
  let consul: ConsulTestServer;
  let closed: number;
  [db, consul, closed, files] = await Promise.all([
    startPglite(),
    startConsulTestServer({ aclTokens: [RIGHT] }),
    closedPort(),
    tempFiles({
      'syntax.mjs': 'export const backend = {\n  name: "custom",,\n};\n',
      'imports.mjs': "import 'baton-missing-dependency-4d1c';\nexport const backend = {};\n",
      'ok.mjs': 'export default async () => 1;\n',
      'leader.mjs': 'export default async () => 1;\nexport async function leader() {}\n',
      'wrong-token': 'not-the-right-token\n',
      'right-token': `${RIGHT}\n`,
      'empty-token': '',
    }),
  ]);
  servers = {
    db,
    consul,
    html: `http://127.0.0.1:${(htmlServer.address() as AddressInfo).port}`,
    closed,
    dir: files.dir,
    realPg: process.env.DATABASE_URL,
  };
}, 120_000);

afterAll(async () => {
  await new Promise((resolve) => htmlServer?.close(resolve));
  await Promise.all([servers?.db.close(), servers?.consul.close(), files?.cleanup()]);
});

describe.concurrent('hostile configuration: each finding of issue 13 (config and connections)', () => {
  for (const mode of ['text', 'json'] as const) {
    it.for(rows)(`$finding (${mode})`, async (row, { skip }) => {
      if (row.skip?.(servers)) skip();
      const result = await baton([...(mode === 'json' ? ['--json'] : []), ...row.args(servers)], {
        env: row.env?.(servers) ?? {},
        cwd: servers.dir,
        timeoutMs: 90_000,
      });
      const output = `${result.stdout}\n${result.stderr}`;
      expect(result.code, output).toBe(row.exit);
      // In JSON mode the message is a JSON string: match it decoded.
      const stderr =
        mode === 'json'
          ? result.stderr
              .trim()
              .split('\n')
              .filter(Boolean)
              .map((line) => {
                const parsed = JSON.parse(line) as {
                  error?: { message: string };
                  warning?: { message: string };
                };
                return (parsed.error ?? parsed.warning)?.message ?? line;
              })
              .join('\n')
          : result.stderr;
      if (row.stderr) expect(stderr).toMatch(row.stderr);
      if (row.notStderr) expect(stderr).not.toMatch(row.notStderr);
      if (row.stdout) expect(result.stdout).toMatch(row.stdout);
      if (row.maxStderr) expect(result.stderr.length).toBeLessThan(row.maxStderr);
    });
  }
});
