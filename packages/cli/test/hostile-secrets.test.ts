import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { availableBackends, resolveBackend, secretFields } from '@baton/core';
import { createPostgresTaskSource, postgresConfigFields } from '@baton/source-postgres';
import { type ConsulTestServer, startConsulTestServer } from '@baton/test-servers/consul-server';
import { type EtcdServer, etcdAvailable, startEtcd } from '@baton/test-servers/etcd';
import { type PgliteServer, startPglite } from '@baton/test-servers/pglite';
import { type RedisServer, redisAvailable, startRedis } from '@baton/test-servers/redis';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baton, closedPort, tempFiles, uniqueSchema } from './helpers.js';

/**
 * Issue 13, serious findings 2 and 3: no password or token may ever reach stdout, stderr or a log line.
 *
 * Every row drives one error path (bad URL schemes, unreachable hosts, malformed values, unknown keys next to
 * secrets, wrong types, auth failures against the real test servers) with the sentinel in every
 * secret-bearing setting at once: those of the row, plus BACKGROUND. Each row runs in text and in --json
 * mode, and the worker rows at every log level. A row also pins its exit code and message, so it cannot
 * pass by failing early somewhere else.
 *
 * The table must cover every secret a package declares (`secret` in its FieldDocs, a backend's `secretEnv`):
 * declaring a new one without adding a row here fails the last test.
 */
const S = 'SeNtInEl7q9wXz';
/** A secret too short to be searched for in free text: masked only by where it sits (field, URL part). */
const SHORT = 'QZXWK';
const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;

/** Every other secret-bearing setting, set to the sentinel in every row (rows override what they use). */
const BACKGROUND: Record<string, string> = {
  PGPASSWORD: S,
  CONSUL_HTTP_TOKEN: S,
  AWS_ACCESS_KEY_ID: 'AKIABATONTEST',
  AWS_SECRET_ACCESS_KEY: S,
  AWS_SESSION_TOKEN: S,
  ETCDCTL_PASSWORD: S,
  REDIS_PASSWORD: S,
};

interface Servers {
  db: PgliteServer;
  consul: ConsulTestServer;
  /** An HTTP server that answers every request with an HTML page. */
  html: string;
  /** A misbehaving proxy: answers 500 with the request's headers (tokens included) in the body. */
  echo: string;
  closed: number;
  dir: string;
  /** A real PostgreSQL server that checks passwords, when DATABASE_URL is set (.ci/run's second stage). */
  realPg: string | undefined;
  /** A real etcd with authentication enabled (user `worker`), when the etcd binary is installed. */
  etcd: EtcdServer | undefined;
  /** A real redis-server with `--requirepass`, when the redis-server binary is installed. */
  redis: RedisServer | undefined;
}

interface Row {
  name: string;
  /** The secret-bearing settings this row puts the sentinel in (env var, flag or config key). */
  covers: string[];
  args: (s: Servers) => string[];
  env?: (s: Servers) => Record<string, string>;
  exit: number;
  stderr: RegExp;
  skip?: (s: Servers) => boolean;
}

const pgUrl = (s: Servers, password = S) =>
  s.db.connectionString.replace('postgres@', `postgres:${password}@`);

const rows: Row[] = [
  // PostgreSQL: DATABASE_URL, --database-url, database.url, PGPASSWORD.
  {
    name: 'DATABASE_URL with a misspelt scheme',
    covers: ['DATABASE_URL'],
    args: () => ['tasks', 'list'],
    env: () => ({ DATABASE_URL: `postgress://app:${S}@127.0.0.1:5432/app` }),
    exit: 2,
    stderr: /expected a postgres:\/\/ or postgresql:\/\/ URL/,
  },
  {
    name: 'DATABASE_URL with a short password and a misspelt scheme',
    covers: ['DATABASE_URL'],
    args: () => ['tasks', 'list'],
    env: () => ({ DATABASE_URL: `postgress://app:${SHORT}@127.0.0.1:5432/app` }),
    exit: 2,
    stderr: /postgress:\/\/app:\[redacted\]@/,
  },
  {
    name: 'DATABASE_URL with the password as a query parameter, bad scheme',
    covers: ['DATABASE_URL query password'],
    args: () => ['tasks', 'stats'],
    env: () => ({ DATABASE_URL: `mysql://app@127.0.0.1/app?password=${S}` }),
    exit: 2,
    stderr: /expected a postgres/,
  },
  {
    name: 'DATABASE_URL with a short query password and an unknown sslmode',
    covers: ['DATABASE_URL query password'],
    args: () => ['tasks', 'stats'],
    env: () => ({ DATABASE_URL: `postgres://app@127.0.0.1/app?sslpassword=${SHORT}&sslmode=banana` }),
    exit: 2,
    stderr: /sslmode "banana" is not an SSL mode/,
  },
  {
    name: '--database-url with a misspelt scheme',
    covers: ['--database-url'],
    args: () => ['--database-url', `postgress://app:${S}@127.0.0.1:5432/app`, 'tasks', 'list'],
    exit: 2,
    stderr: /expected a postgres:\/\//,
  },
  {
    name: 'database.url in the config file, port out of range',
    covers: ['database.url'],
    args: (s) => ['--config', join(s.dir, 'database-url.json'), 'tasks', 'list'],
    exit: 2,
    stderr: /port "99999" is out of range/,
  },
  {
    name: 'DATABASE_URL with an unencoded / in the password',
    covers: ['DATABASE_URL'],
    args: () => ['migrate'],
    env: () => ({ DATABASE_URL: `postgres://app:${S}/x@127.0.0.1:5432/app` }),
    exit: 2,
    stderr: /cannot be parsed as a URL/,
  },
  {
    name: 'DATABASE_URL pointing at a closed port',
    covers: ['DATABASE_URL'],
    args: () => ['tasks', 'stats'],
    env: (s) => ({ DATABASE_URL: `postgres://app:${S}@127.0.0.1:${s.closed}/app` }),
    exit: 3,
    stderr: /cannot connect to the database: .*ECONNREFUSED/,
  },
  {
    name: 'DATABASE_URL pointing at something that is not PostgreSQL (the Consul agent)',
    covers: ['DATABASE_URL'],
    args: () => ['tasks', 'list'],
    env: (s) => ({
      DATABASE_URL: `postgres://app:${S}@127.0.0.1:${new URL(s.consul.url).port}/app`,
      BATON_PG_CONNECT_TIMEOUT: '5s',
    }),
    exit: 3,
    stderr: /postgres/,
  },
  {
    name: 'PGPASSWORD with PGHOST unreachable',
    covers: ['PGPASSWORD'],
    args: () => ['tasks', 'list'],
    env: (s) => ({ PGHOST: '127.0.0.1', PGPORT: String(s.closed), PGUSER: 'app', PGPASSWORD: S }),
    exit: 3,
    stderr: /cannot connect/,
  },
  {
    name: 'another PostgreSQL setting bad, secrets beside it',
    covers: ['DATABASE_URL', 'PGPASSWORD'],
    args: () => ['tasks', 'list'],
    env: (s) => ({ DATABASE_URL: pgUrl(s), BATON_PG_POOL_SIZE: 'lots' }),
    exit: 2,
    stderr: /BATON_PG_POOL_SIZE/,
  },
  {
    name: 'a wrong password against a real server',
    covers: ['DATABASE_URL'],
    args: () => ['tasks', 'list'],
    env: (s) => ({
      DATABASE_URL: withUrl(s.realPg, (url) => {
        url.password = S;
      }),
    }),
    exit: 4,
    stderr: /password authentication failed/,
    skip: (s) => !s.realPg,
  },
  {
    name: 'a missing database on a real server',
    covers: ['DATABASE_URL'],
    args: () => ['tasks', 'stats'],
    env: (s) => ({
      DATABASE_URL: withUrl(s.realPg, (url) => {
        url.pathname = '/baton_missing_9b';
      }),
    }),
    exit: 2,
    stderr: /does not exist/,
    skip: (s) => !s.realPg,
  },

  // Consul: CONSUL_HTTP_TOKEN, CONSUL_HTTP_TOKEN_FILE, lock.token, CONSUL_HTTP_ADDR, client key contents.
  {
    name: 'a wrong CONSUL_HTTP_TOKEN (ACL server)',
    covers: ['CONSUL_HTTP_TOKEN'],
    args: () => ['locks', 'show', 'k'],
    env: (s) => ({ BATON_BACKEND: 'consul', CONSUL_HTTP_ADDR: s.consul.url, CONSUL_HTTP_TOKEN: S }),
    exit: 4,
    stderr: /Consul does not know the ACL token: check CONSUL_HTTP_TOKEN/,
  },
  {
    name: 'CONSUL_HTTP_TOKEN with a CR/LF',
    covers: ['CONSUL_HTTP_TOKEN'],
    args: () => ['locks', 'list'],
    env: (s) => ({ BATON_BACKEND: 'consul', CONSUL_HTTP_ADDR: s.consul.url, CONSUL_HTTP_TOKEN: `${S}\r\n` }),
    exit: 2,
    stderr: /CONSUL_HTTP_TOKEN: contains a line break/,
  },
  {
    name: 'a short CONSUL_HTTP_TOKEN with a control character',
    covers: ['CONSUL_HTTP_TOKEN'],
    args: () => ['locks', 'list'],
    env: (s) => ({
      BATON_BACKEND: 'consul',
      CONSUL_HTTP_ADDR: s.consul.url,
      CONSUL_HTTP_TOKEN: `${SHORT}\u0001`,
    }),
    exit: 2,
    stderr: /control or non-ASCII character/,
  },
  {
    name: 'a wrong token in CONSUL_HTTP_TOKEN_FILE',
    covers: ['CONSUL_HTTP_TOKEN_FILE contents'],
    args: () => ['locks', 'show', 'k'],
    env: (s) => ({
      BATON_BACKEND: 'consul',
      CONSUL_HTTP_ADDR: s.consul.url,
      CONSUL_HTTP_TOKEN_FILE: join(s.dir, 'wrong-token'),
    }),
    exit: 4,
    stderr: /check CONSUL_HTTP_TOKEN_FILE/,
  },
  {
    name: 'the token itself put in CONSUL_HTTP_TOKEN_FILE',
    covers: ['CONSUL_HTTP_TOKEN_FILE contents'],
    args: () => ['locks', 'list'],
    env: (s) => ({ BATON_BACKEND: 'consul', CONSUL_HTTP_ADDR: s.consul.url, CONSUL_HTTP_TOKEN_FILE: S }),
    exit: 2,
    stderr: /not shown/,
  },
  {
    name: 'an empty CONSUL_HTTP_TOKEN_FILE beside CONSUL_HTTP_TOKEN',
    covers: ['CONSUL_HTTP_TOKEN'],
    args: () => ['locks', 'list'],
    env: (s) => ({
      BATON_BACKEND: 'consul',
      CONSUL_HTTP_ADDR: s.consul.url,
      CONSUL_HTTP_TOKEN_FILE: join(s.dir, 'empty-token'),
    }),
    exit: 2,
    stderr: /is empty/,
  },
  {
    name: 'lock.token in the config file beside an unknown key',
    covers: ['lock.token'],
    args: (s) => ['--config', join(s.dir, 'lock-unknown-key.json'), 'locks', 'list'],
    exit: 2,
    stderr: /Unrecognized key: "tokn"/,
  },
  {
    name: 'a short lock.token in the config file beside an unknown key',
    covers: ['lock.token'],
    args: (s) => ['--config', join(s.dir, 'lock-unknown-key-short.json'), 'locks', 'list'],
    exit: 2,
    stderr: /Unrecognized key: "tokn"/,
  },
  {
    name: 'a wrong lock.token in the config file',
    covers: ['lock.token'],
    args: (s) => ['--config', join(s.dir, 'lock-wrong-token.json'), 'locks', 'show', 'k'],
    exit: 4,
    stderr: /check CONSUL_HTTP_TOKEN \(token\)/,
  },
  {
    name: 'lock.token of the wrong type in the config file',
    covers: ['lock.token'],
    args: (s) => ['--config', join(s.dir, 'lock-token-object.json'), 'locks', 'list'],
    exit: 2,
    stderr: /token/,
  },
  {
    name: 'a config file that is not JSON, next to the token',
    covers: ['lock.token'],
    args: (s) => ['--config', join(s.dir, 'not-json.json'), 'locks', 'list'],
    exit: 2,
    stderr: /is not valid JSON/,
  },
  {
    name: 'a malformed CONSUL_HTTP_ADDR with userinfo',
    covers: ['CONSUL_HTTP_ADDR'],
    args: () => ['locks', 'list'],
    env: () => ({ BATON_BACKEND: 'consul', CONSUL_HTTP_ADDR: `http://u:${S}@[bad` }),
    exit: 2,
    stderr: /CONSUL_HTTP_ADDR: expected host:port/,
  },
  {
    name: 'a short password in a malformed CONSUL_HTTP_ADDR',
    covers: ['CONSUL_HTTP_ADDR'],
    args: () => ['locks', 'list'],
    env: () => ({ BATON_BACKEND: 'consul', CONSUL_HTTP_ADDR: `ftp://u:${SHORT}@agent:8500` }),
    exit: 2,
    stderr: /unsupported scheme/,
  },
  {
    name: 'a well-formed CONSUL_HTTP_ADDR with userinfo',
    covers: ['CONSUL_HTTP_ADDR'],
    args: () => ['locks', 'list'],
    env: (s) => ({ BATON_BACKEND: 'consul', CONSUL_HTTP_ADDR: s.consul.url.replace('://', `://u:${S}@`) }),
    exit: 2,
    stderr: /must not carry credentials/,
  },
  {
    name: 'CONSUL_HTTP_ADDR at a closed port',
    covers: ['CONSUL_HTTP_TOKEN'],
    args: () => ['locks', 'list'],
    env: (s) => ({ BATON_BACKEND: 'consul', CONSUL_HTTP_ADDR: `127.0.0.1:${s.closed}` }),
    exit: 3,
    stderr: /ECONNREFUSED/,
  },
  {
    name: 'a client key whose contents are the sentinel (https to a plain-HTTP agent)',
    covers: ['CONSUL_CLIENT_KEY contents'],
    args: () => ['locks', 'list'],
    env: (s) => ({
      BATON_BACKEND: 'consul',
      CONSUL_HTTP_ADDR: s.consul.url.replace('http:', 'https:'),
      CONSUL_CLIENT_CERT: join(s.dir, 'client.crt'),
      CONSUL_CLIENT_KEY: join(s.dir, 'client.key'),
    }),
    exit: 3,
    stderr: /Consul/,
  },
  {
    name: 'the key itself put in CONSUL_CLIENT_KEY',
    covers: ['CONSUL_CLIENT_KEY contents'],
    args: () => ['locks', 'list'],
    env: (s) => ({
      BATON_BACKEND: 'consul',
      CONSUL_HTTP_ADDR: s.consul.url,
      CONSUL_CLIENT_CERT: join(s.dir, 'client.crt'),
      CONSUL_CLIENT_KEY: keyPem(S),
    }),
    exit: 2,
    stderr: /CONSUL_CLIENT_KEY.*not shown/,
  },
  {
    name: 'Consul behind a proxy that echoes the request headers in its error page',
    covers: ['CONSUL_HTTP_TOKEN'],
    args: () => ['locks', 'show', 'k'],
    env: (s) => ({ BATON_BACKEND: 'consul', CONSUL_HTTP_ADDR: s.echo }),
    exit: 3,
    stderr: /HTTP 500: proxy error[\s\S]*x-consul-token: \[redacted\]/,
  },
  {
    name: 'another Consul setting bad, the token beside it',
    covers: ['CONSUL_HTTP_TOKEN'],
    args: () => ['locks', 'list'],
    env: (s) => ({ BATON_BACKEND: 'consul', CONSUL_HTTP_ADDR: s.consul.url, BATON_SESSION_TTL: 'soon' }),
    exit: 2,
    stderr: /BATON_SESSION_TTL/,
  },

  // DynamoDB: AWS_ENDPOINT_URL_DYNAMODB, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN.
  {
    name: 'AWS_ENDPOINT_URL_DYNAMODB with credentials, pointing at an HTML server',
    covers: ['AWS_ENDPOINT_URL_DYNAMODB', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'],
    args: () => ['locks', 'show', 'k'],
    env: (s) => ({
      BATON_BACKEND: 'dynamodb',
      AWS_ENDPOINT_URL_DYNAMODB: s.html.replace('://', `://u:${S}@`),
    }),
    exit: 3,
    stderr: /not DynamoDB/,
  },
  {
    name: 'DynamoDB behind a proxy that echoes the request headers in its error page',
    covers: ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'],
    args: () => ['locks', 'show', 'k'],
    env: (s) => ({ BATON_BACKEND: 'dynamodb', AWS_ENDPOINT_URL_DYNAMODB: s.echo, BATON_SESSION_TTL: '2s' }),
    exit: 3,
    stderr: /DynamoDB/,
  },
  {
    name: 'a malformed AWS_ENDPOINT_URL_DYNAMODB with credentials',
    covers: ['AWS_ENDPOINT_URL_DYNAMODB'],
    args: () => ['locks', 'list'],
    env: () => ({ BATON_BACKEND: 'dynamodb', AWS_ENDPOINT_URL_DYNAMODB: `http://u:${S}@[bad` }),
    exit: 2,
    stderr: /AWS_ENDPOINT_URL_DYNAMODB/,
  },
  {
    name: 'AWS credentials with a closed endpoint',
    covers: ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'],
    args: () => ['locks', 'list'],
    env: (s) => ({
      BATON_BACKEND: 'dynamodb',
      AWS_ENDPOINT_URL_DYNAMODB: `http://127.0.0.1:${s.closed}`,
      // A command retries for one lease duration (20 s by default) before giving up.
      BATON_SESSION_TTL: '2s',
    }),
    exit: 3,
    stderr: /DynamoDB/,
  },
  {
    name: 'AWS credentials beside a bad AWS_REGION',
    covers: ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'],
    args: () => ['locks', 'list'],
    env: () => ({ BATON_BACKEND: 'dynamodb', AWS_REGION: 'us east!!' }),
    exit: 2,
    stderr: /AWS_REGION/,
  },

  // etcd: ETCD_ENDPOINTS, ETCDCTL_ENDPOINTS, ETCDCTL_USER (name:password), ETCDCTL_PASSWORD.
  {
    name: 'ETCD_ENDPOINTS with credentials',
    covers: ['ETCD_ENDPOINTS'],
    args: () => ['locks', 'list'],
    env: () => ({
      BATON_BACKEND: 'etcd',
      ETCD_ENDPOINTS: `http://root:${S}@etcd:2379`,
      ETCDCTL_PASSWORD: '',
    }),
    exit: 2,
    stderr: /ETCD_ENDPOINTS: must not carry credentials/,
  },
  {
    name: 'ETCDCTL_ENDPOINTS with a short password and a bad scheme',
    covers: ['ETCDCTL_ENDPOINTS'],
    args: () => ['locks', 'list'],
    env: () => ({
      BATON_BACKEND: 'etcd',
      ETCDCTL_ENDPOINTS: `ftp://root:${SHORT}@etcd:2379`,
      ETCDCTL_PASSWORD: '',
    }),
    exit: 2,
    stderr: /ETCDCTL_ENDPOINTS: unsupported scheme/,
  },
  {
    name: 'ETCDCTL_USER as name:password with a closed endpoint',
    covers: ['ETCDCTL_USER'],
    args: () => ['locks', 'show', 'k'],
    env: (s) => ({
      BATON_BACKEND: 'etcd',
      ETCD_ENDPOINTS: `127.0.0.1:${s.closed}`,
      ETCDCTL_USER: `worker:${S}`,
      ETCDCTL_PASSWORD: '',
      BATON_ETCD_TIMEOUT: '2s',
    }),
    exit: 3,
    stderr: /etcd/,
  },
  {
    name: 'ETCDCTL_USER with a short password given twice',
    covers: ['ETCDCTL_USER', 'ETCDCTL_PASSWORD'],
    args: () => ['locks', 'list'],
    env: () => ({ BATON_BACKEND: 'etcd', ETCDCTL_USER: `worker:${SHORT}`, ETCDCTL_PASSWORD: SHORT }),
    exit: 2,
    stderr: /ETCDCTL_PASSWORD: the password is given twice/,
  },
  {
    name: 'a wrong ETCDCTL_PASSWORD against a real etcd with authentication',
    covers: ['ETCDCTL_PASSWORD', 'ETCDCTL_USER'],
    args: () => ['locks', 'show', 'k'],
    env: (s) => ({ BATON_BACKEND: 'etcd', ETCD_ENDPOINTS: s.etcd?.endpoint ?? '', ETCDCTL_USER: 'worker' }),
    exit: 4,
    stderr: /authentication failed.*ETCDCTL_USER and ETCDCTL_PASSWORD/,
    skip: (s) => !s.etcd,
  },
  {
    name: 'another etcd setting bad, the password beside it',
    covers: ['ETCDCTL_PASSWORD'],
    args: () => ['locks', 'list'],
    env: () => ({ BATON_BACKEND: 'etcd', ETCDCTL_USER: 'worker', BATON_SESSION_TTL: 'soon' }),
    exit: 2,
    stderr: /BATON_SESSION_TTL/,
  },

  // PostgreSQL as the lock backend: BATON_LOCK_DATABASE_URL (it wins over DATABASE_URL).
  {
    name: 'BATON_LOCK_DATABASE_URL with a misspelt scheme',
    covers: ['BATON_LOCK_DATABASE_URL'],
    args: () => ['locks', 'list'],
    env: () => ({
      BATON_BACKEND: 'postgres',
      BATON_LOCK_DATABASE_URL: `postgress://app:${S}@127.0.0.1:5432/app`,
    }),
    exit: 2,
    stderr: /BATON_LOCK_DATABASE_URL: expected a postgres:\/\/ or postgresql:\/\/ URL/,
  },
  {
    name: 'BATON_LOCK_DATABASE_URL with a short password and a closed port',
    covers: ['BATON_LOCK_DATABASE_URL'],
    args: () => ['locks', 'show', 'k'],
    env: (s) => ({
      BATON_BACKEND: 'postgres',
      BATON_LOCK_DATABASE_URL: `postgres://app:${SHORT}@127.0.0.1:${s.closed}/app`,
    }),
    exit: 3,
    stderr: /cannot connect to the database: .*BATON_LOCK_DATABASE_URL/,
  },

  // Redis: REDIS_URL (user:password@), REDIS_PASSWORD.
  {
    name: 'REDIS_URL with credentials and a bad scheme',
    covers: ['REDIS_URL'],
    args: () => ['locks', 'list'],
    env: () => ({ BATON_BACKEND: 'redis', REDIS_URL: `http://worker:${S}@cache:6379`, REDIS_PASSWORD: '' }),
    exit: 2,
    stderr: /REDIS_URL: unsupported scheme/,
  },
  {
    name: 'REDIS_URL with a short password and a bad database',
    covers: ['REDIS_URL'],
    args: () => ['locks', 'list'],
    env: () => ({ BATON_BACKEND: 'redis', REDIS_URL: `redis://:${SHORT}@cache:6379/x`, REDIS_PASSWORD: '' }),
    exit: 2,
    stderr: /REDIS_URL: expected redis:\/\/host/,
  },
  {
    name: 'REDIS_URL with credentials and a closed port',
    covers: ['REDIS_URL'],
    args: () => ['locks', 'show', 'k'],
    env: (s) => ({
      BATON_BACKEND: 'redis',
      REDIS_URL: `redis://worker:${S}@127.0.0.1:${s.closed}`,
      REDIS_PASSWORD: '',
      BATON_REDIS_TIMEOUT: '2s',
    }),
    exit: 3,
    stderr: /REDIS_URL/,
  },
  {
    name: 'REDIS_PASSWORD, short, given twice',
    covers: ['REDIS_PASSWORD', 'REDIS_URL'],
    args: () => ['locks', 'list'],
    env: () => ({ BATON_BACKEND: 'redis', REDIS_URL: `redis://:${SHORT}@cache`, REDIS_PASSWORD: SHORT }),
    exit: 2,
    stderr: /REDIS_PASSWORD: the password is given twice/,
  },
  {
    name: 'a wrong REDIS_PASSWORD against a real redis-server with a password',
    covers: ['REDIS_PASSWORD'],
    args: () => ['locks', 'show', 'k'],
    env: (s) => ({ BATON_BACKEND: 'redis', REDIS_URL: s.redis?.url ?? '' }),
    exit: 4,
    stderr: /authentication failed.*REDIS_PASSWORD/,
    skip: (s) => !s.redis,
  },
  {
    name: 'a wrong password in REDIS_URL against a real redis-server with a password',
    covers: ['REDIS_URL'],
    args: () => ['locks', 'list'],
    env: (s) => ({
      BATON_BACKEND: 'redis',
      REDIS_URL: (s.redis?.url ?? '').replace('redis://', `redis://default:${S}@`),
      REDIS_PASSWORD: '',
    }),
    exit: 4,
    stderr: /authentication failed.*REDIS_URL/,
    skip: (s) => !s.redis,
  },
  {
    name: 'another redis setting bad, the password beside it',
    covers: ['REDIS_PASSWORD'],
    args: () => ['locks', 'list'],
    env: () => ({ BATON_BACKEND: 'redis', BATON_REDIS_PREFIX: 'jobs*' }),
    exit: 2,
    stderr: /BATON_REDIS_PREFIX/,
  },
];

/** The worker's error paths, run at every log level: stdout is the pino log. */
const workerRows: Row[] = [
  {
    name: 'worker: the Consul preflight is denied',
    covers: ['CONSUL_HTTP_TOKEN', 'DATABASE_URL'],
    args: (s) => ['worker', '--handler', join(s.dir, 'echo-secrets.mjs'), '--once'],
    env: (s) => ({
      BATON_BACKEND: 'consul',
      CONSUL_HTTP_ADDR: s.consul.url,
      CONSUL_HTTP_TOKEN: S,
      DATABASE_URL: pgUrl(s),
      BATON_PG_SCHEMA: uniqueSchema('sec'),
    }),
    exit: 4,
    stderr: /read 'baton\/preflight' failed/,
  },
  {
    name: 'worker: the database is unreachable',
    covers: ['DATABASE_URL'],
    args: (s) => ['worker', '--handler', join(s.dir, 'echo-secrets.mjs'), '--once'],
    env: (s) => ({ DATABASE_URL: `postgres://app:${S}@127.0.0.1:${s.closed}/app` }),
    exit: 3,
    stderr: /cannot connect to the database/,
  },
];

let servers: Servers;
let files: Awaited<ReturnType<typeof tempFiles>>;
let htmlServer: Server;
let echoServer: Server;

beforeAll(async () => {
  htmlServer = createServer((request, response) => {
    request.resume();
    response.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>It works!</body></html>');
  });
  echoServer = createServer((request, response) => {
    request.resume();
    const headers = Object.entries(request.headers).map(([name, value]) => `${name}: ${value}`);
    response
      .writeHead(500, { 'content-type': 'text/plain' })
      .end(`proxy error; request was:\n${headers.join('\n')}`);
  });
  await Promise.all(
    [htmlServer, echoServer].map(
      (server) => new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve)),
    ),
  );
  const rightToken = `${S}-right`;
  let db: PgliteServer;
  let consul: ConsulTestServer;
  let closed: number;
  let etcd: EtcdServer | undefined;
  let redis: RedisServer | undefined;
  [db, consul, closed, files, etcd, redis] = await Promise.all([
    startPglite(),
    startConsulTestServer({ aclTokens: [rightToken] }),
    closedPort(),
    tempFiles({
      'wrong-token': `${S}\n`,
      'empty-token': '',
      'client.crt': '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n',
      'client.key': keyPem(S),
      'lock-unknown-key.json': JSON.stringify({ lock: { backend: 'consul', token: S, tokn: S } }),
      'lock-unknown-key-short.json': JSON.stringify({
        lock: { backend: 'consul', token: SHORT, tokn: SHORT },
      }),
      'lock-token-object.json': JSON.stringify({ lock: { backend: 'consul', token: { value: S } } }),
      'not-json.json': `{"lock":{"backend":"consul","token":"${S}" "x":1}}`,
      'database-url.json': JSON.stringify({ database: { url: `postgres://app:${S}@127.0.0.1:99999/app` } }),
      // The handler fails every task with a message that quotes the connection string and the token.
      'echo-secrets.mjs': `export default async function () {
  throw new Error('cannot reach ' + process.env.DATABASE_URL + ' with token ' + process.env.CONSUL_HTTP_TOKEN);
}
`,
    }),
    startAuthEtcd(`${S}-right`),
    redisAvailable('the Redis rows of the hostile-secrets tests')
      ? startRedis({ args: ['--requirepass', `${S}-right`] })
      : undefined,
  ]);
  servers = {
    db,
    consul,
    html: `http://127.0.0.1:${(htmlServer.address() as AddressInfo).port}`,
    echo: `http://127.0.0.1:${(echoServer.address() as AddressInfo).port}`,
    closed,
    dir: files.dir,
    realPg: process.env.DATABASE_URL,
    etcd,
    redis,
  };
  const lockWrong = { lock: { backend: 'consul', address: consul.url, token: S } };
  await writeFile(join(files.dir, 'lock-wrong-token.json'), JSON.stringify(lockWrong));
}, 120_000);

afterAll(async () => {
  await new Promise((resolve) => htmlServer?.close(resolve));
  await new Promise((resolve) => echoServer?.close(resolve));
  await Promise.all([
    servers?.db.close(),
    servers?.consul.close(),
    servers?.etcd?.close(),
    servers?.redis?.close(),
    files?.cleanup(),
  ]);
});

async function run(row: Row, extraArgs: string[], extraEnv: Record<string, string> = {}) {
  const result = await baton([...extraArgs, ...row.args(servers)], {
    env: { ...BACKGROUND, ...row.env?.(servers), ...extraEnv },
    timeoutMs: 90_000,
  });
  const output = `${result.stdout}\n${result.stderr}`;
  expect(output, 'the sentinel leaked').not.toContain(S);
  expect(output, 'the short sentinel leaked').not.toContain(SHORT);
  expect(result.code, output).toBe(row.exit);
  if (extraArgs.includes('--json')) {
    const last = result.stderr.trim().split('\n').at(-1) ?? '';
    const { error } = JSON.parse(last) as { error: { exitCode: number; message: string } };
    expect(error.exitCode).toBe(row.exit);
    expect(error.message).toMatch(row.stderr);
  } else expect(result.stderr).toMatch(row.stderr);
  return result;
}

describe.concurrent('no secret in any output', () => {
  it.for(rows)('$name (text)', async (row, { skip }) => {
    if (row.skip?.(servers)) skip();
    await run(row, []);
  });

  it.for(rows)('$name (--json)', async (row, { skip }) => {
    if (row.skip?.(servers)) skip();
    await run(row, ['--json']);
  });

  it.each(workerRows.flatMap((row) => LEVELS.map((level) => [row.name, level, row] as const)))(
    '%s, log level %s',
    async (_name, level, row) => {
      await run(row, ['--log-level', level]);
    },
  );

  it.each(LEVELS)(
    'worker: a handler error quoting DATABASE_URL and the token, log level %s',
    async (level) => {
      const schema = uniqueSchema('sec');
      const databaseUrl = pgUrl(servers);
      const source = await createPostgresTaskSource({ DATABASE_URL: databaseUrl, BATON_PG_SCHEMA: schema });
      try {
        await source.enqueue({ kind: 'leaky', maxAttempts: 2 });
      } finally {
        await source.close();
      }
      const result = await run(
        {
          name: 'handler echoes secrets',
          covers: ['DATABASE_URL', 'CONSUL_HTTP_TOKEN'],
          args: (s) => ['worker', '--handler', join(s.dir, 'echo-secrets.mjs'), '--once'],
          env: (s) => ({
            BATON_BACKEND: 'consul',
            CONSUL_HTTP_ADDR: s.consul.url,
            CONSUL_HTTP_TOKEN: `${S}-right`,
            // Every schema numbers its tasks from 1: a prefix of its own keeps the lock keys apart.
            BATON_CONSUL_PREFIX: `${schema}/`,
            DATABASE_URL: databaseUrl,
            BATON_PG_SCHEMA: schema,
            BATON_LOG_LEVEL: level,
          }),
          exit: 0,
          stderr: /^$/,
        },
        [],
      );
      // The error was logged (at the levels that show warnings), with the secrets masked.
      if (['trace', 'debug', 'info', 'warn'].includes(level)) {
        expect(result.stdout, result.stdout).toMatch(
          /cannot reach postgres:\/\/postgres:\[redacted\]@.* with token \[redacted\]/,
        );
      }
    },
  );
});

describe('the table covers every declared secret', () => {
  it('has a row for each secret a package declares, and for each secret-bearing setting the CLI adds', async () => {
    const declared = new Set<string>();
    for (const { docs } of secretFields(postgresConfigFields)) declared.add(docs.env ?? '');
    for (const name of availableBackends()) {
      const backend = await resolveBackend(name);
      for (const { path, docs } of secretFields(backend.fields)) declared.add(docs.env ?? `${name}.${path}`);
      for (const variable of backend.secretEnv ?? []) declared.add(variable);
    }
    const alsoRequired = [
      'DATABASE_URL query password',
      '--database-url',
      'database.url',
      'lock.token',
      'CONSUL_HTTP_TOKEN_FILE contents',
      'CONSUL_CLIENT_KEY contents',
    ];
    const covered = new Set([...rows, ...workerRows].flatMap((row) => row.covers));
    const missing = [...declared, ...alsoRequired].filter((setting) => !covered.has(setting));
    expect(missing, 'secret-bearing settings without a row in this table').toEqual([]);
    expect(declared.size).toBeGreaterThanOrEqual(7);
  });
});

/**
 * An etcd with authentication enabled and a user `worker`, or `undefined` without the etcd binary (a warning;
 * with `CI` set, an error).
 */
async function startAuthEtcd(workerPassword: string): Promise<EtcdServer | undefined> {
  if (!etcdAvailable('the etcd row of the hostile-secrets tests')) return undefined;
  const server = await startEtcd();
  const admin = new Etcd3({ hosts: server.endpoint });
  try {
    await admin.role('root').create();
    await admin.user('root').create(`${workerPassword}-root`);
    await admin.user('root').addRole('root');
    await admin.user('worker').create(workerPassword);
    await admin.auth.authEnable();
  } finally {
    admin.close();
  }
  return server;
}

function withUrl(base: string | undefined, change: (url: URL) => void): string {
  const url = new URL(base ?? 'postgres://localhost/x');
  change(url);
  return url.toString();
}

function keyPem(body: string): string {
  return `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`;
}
