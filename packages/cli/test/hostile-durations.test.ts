import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { backend as consulBackend } from '@baton/backend-consul';
import { backend as dynamoBackend } from '@baton/backend-dynamodb';
import {
  type ConfigError,
  createLockProvider,
  type DurationBounds,
  describeDurationBounds,
  durationSettings,
  type FieldDocs,
  formatDurationBound,
  MAX_DURATION_MS,
  memoryBackend,
  parseConfig,
} from '@baton/core';
import {
  createPostgresTaskSource,
  type PostgresTaskSource,
  parsePostgresConfig,
  postgresConfigFields,
  postgresConfigSchema,
} from '@baton/source-postgres';
import { type PgliteServer, startPglite } from '@baton/test-servers/pglite';
import type { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { durationArgBounds } from '../src/args.js';
import { UsageError } from '../src/classify-errors.js';
import { configFileSchema, loadConfigFile } from '../src/config.js';
import { createProgram } from '../src/program.js';
import { baton, closedPort, Running, tempFiles, uniqueSchema } from './helpers.js';

const DOCS = fileURLToPath(new URL('../../../docs/', import.meta.url));

let db: PgliteServer;
let files: Awaited<ReturnType<typeof tempFiles>>;
const sources: PostgresTaskSource[] = [];

beforeAll(async () => {
  [db, files] = await Promise.all([
    startPglite(),
    tempFiles({
      // Finishes after 300 ms unless its signal aborts first.
      'short.mjs': `export default async function ({ signal }) {
  await new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, 300);
    signal.addEventListener('abort', () => { clearTimeout(timer); reject(signal.reason); });
  });
  return 'finished';
}
`,
      'slow.mjs': `export default async function ({ signal }) {
  await new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, 1500);
    signal.addEventListener('abort', () => { clearTimeout(timer); reject(signal.reason); });
  });
  return 'finished';
}
`,
    }),
  ]);
});

afterAll(async () => {
  await Promise.all(sources.map((s) => s.close()));
  await files?.cleanup();
  await db?.close();
});

/** A schema of the test's own on the shared PGlite, with one task enqueued. */
async function oneTask() {
  const schema = uniqueSchema('dur');
  const source = await createPostgresTaskSource({
    connectionString: db.connectionString,
    schema,
    poolSize: 2,
  });
  sources.push(source);
  const [id] = await source.enqueue({ kind: 'job' });
  return { source, id: id!, env: { DATABASE_URL: db.connectionString, BATON_PG_SCHEMA: schema } };
}

/** Just past a bound, written the way a user would (`86400001ms`). */
const ms = (value: number) => `${value}ms`;

describe('every CLI flag that takes a duration states and enforces its bounds', () => {
  const flags: Array<{ command: string[]; flag: string; bounds: DurationBounds; required: number }> = [];
  const untyped: string[] = [];
  const walk = (command: Command, path: string[]) => {
    for (const option of command.options) {
      const bounds = durationArgBounds(option.parseArg);
      const flag = option.long ?? option.flags;
      if (bounds) {
        const required = command.registeredArguments.filter((a) => a.required).length;
        flags.push({ command: path, flag, bounds, required });
      } else if (/<(duration|ms)>|\bms\b|millisecond/i.test(`${option.flags} ${option.description}`)) {
        untyped.push(`${[...path, flag].join(' ')}`);
      }
    }
    for (const sub of command.commands) walk(sub, [...path, sub.name()]);
  };
  walk(createProgram(), []);

  it('finds the duration flags, and every flag that looks like a duration is one', () => {
    expect(flags.map((f) => [...f.command, f.flag].join(' '))).toEqual(
      expect.arrayContaining(['worker --every', 'worker --handler-timeout', 'worker --stop-grace']),
    );
    expect(untyped).toEqual([]);
  });

  it.each(flags)('$command $flag', async ({ command, flag, bounds, required }) => {
    const args = [...command, ...Array.from({ length: required }, () => 'x')];
    const values = bounds.min > 0 ? [bounds.max + 1, bounds.min - 1] : [bounds.max + 1];
    for (const value of values) {
      const result = await baton([...args, flag, ms(value)], { cwd: files.dir });
      expect(result.code, `${flag} ${ms(value)}: ${result.stderr}`).toBe(2);
      expect(result.stderr).toContain(flag);
      expect(result.stderr).toContain(describeDurationBounds(bounds));
    }
    expect(bounds.max).toBeLessThanOrEqual(MAX_DURATION_MS);
  });

  it('docs/cli.md states each flag’s bounds', async () => {
    const text = await readFile(join(DOCS, 'cli.md'), 'utf8');
    for (const { command, flag, bounds } of flags) {
      const section = text.split(/^## /m).find((s) => s.startsWith(`\`baton ${command[0]}`)) ?? '';
      const line = section.split('\n').find((l) => l.includes(`\`${flag}`)) ?? '';
      expect(line, `${command.join(' ')} ${flag}`).toContain(formatDurationBound(bounds.max));
      if (bounds.min > 0)
        expect(line, `${command.join(' ')} ${flag}`).toContain(formatDurationBound(bounds.min));
    }
  });
});

describe('every duration key of the config file states and enforces its bounds', () => {
  const settings = durationSettings(configFileSchema);

  it('finds the worker durations', () => {
    expect(settings.map((s) => s.path)).toEqual(
      expect.arrayContaining(['worker.every', 'worker.handlerTimeout', 'worker.stopGrace']),
    );
  });

  it.each(settings)('$path', async ({ path, bounds }) => {
    const [section, key] = path.split('.') as [string, string];
    const file = join(files.dir, `${section}-${key}.json`);
    const write = (value: string) => writeFile(file, JSON.stringify({ [section]: { [key]: value } }));
    await write(ms(bounds.max));
    await expect(loadConfigFile(file, {}, files.dir)).resolves.toBeTruthy();
    for (const value of bounds.min > 0 ? [bounds.max + 1, bounds.min - 1] : [bounds.max + 1]) {
      await write(ms(value));
      const error = await loadConfigFile(file, {}, files.dir).catch((e: unknown) => e as UsageError);
      expect(error, `${path} = ${ms(value)}`).toBeInstanceOf(UsageError);
      expect(error).toMatchObject({ field: path });
      expect((error as Error).message).toContain(
        `${path}: expected a duration ${describeDurationBounds(bounds)}`,
      );
    }
  });
});

/**
 * The backends' and the database's duration settings, straight from their schemas. Companions are other
 * settings a value needs to be valid at its bound (a heartbeat fits twice into the TTL, ...).
 */
const backendTables: Array<{
  backend: string;
  schema: unknown;
  fields: Readonly<Record<string, FieldDocs>>;
  base: Record<string, string>;
  companions?: Record<string, Record<string, string>>;
  section: string;
}> = [
  {
    backend: 'memory',
    schema: memoryBackend.schema,
    fields: memoryBackend.fields ?? {},
    base: {},
    section: '### Memory',
  },
  {
    backend: 'consul',
    schema: consulBackend.schema,
    fields: consulBackend.fields ?? {},
    base: {},
    companions: { ttlMs: { BATON_CONSUL_ALLOW_SHORT_TTL: 'true' } },
    section: '### Consul',
  },
  {
    backend: 'dynamodb',
    schema: dynamoBackend.schema,
    fields: dynamoBackend.fields ?? {},
    base: { AWS_REGION: 'eu-west-1' },
    companions: { heartbeatIntervalMs: { BATON_SESSION_TTL: '24h' } },
    section: '### DynamoDB',
  },
  {
    backend: 'postgres',
    schema: postgresConfigSchema,
    fields: postgresConfigFields,
    base: { DATABASE_URL: 'postgres://baton@127.0.0.1:5432/baton' },
    companions: {
      'backoff.baseMs': { BATON_PG_BACKOFF_MAX: '720h' },
      'backoff.maxMs': { BATON_PG_BACKOFF_BASE: '1ms' },
    },
    section: '## The task list',
  },
];

function parseEnv(backend: string, env: Record<string, string>): unknown {
  if (backend === 'postgres') return parsePostgresConfig(env, { fromEnv: true });
  const table = backendTables.find((t) => t.backend === backend)!;
  const definition = { memory: memoryBackend, consul: consulBackend, dynamodb: dynamoBackend }[
    backend as 'memory'
  ];
  return parseConfig(table.schema as typeof definition.schema, definition.fromEnv(env), {
    backend,
    fields: table.fields,
    fromEnv: true,
  });
}

async function refusedFromEnv(backend: string, env: Record<string, string>): Promise<ConfigError> {
  try {
    if (backend === 'postgres') parsePostgresConfig(env, { fromEnv: true });
    else await (await createLockProvider({ ...env, BATON_BACKEND: backend })).close();
  } catch (error) {
    return error as ConfigError;
  }
  throw new Error(`expected ${JSON.stringify(env)} to be refused`);
}

describe.each(backendTables)(
  'every duration setting of the $backend configuration states and enforces its bounds',
  ({ backend, schema, fields, base, companions, section }) => {
    const settings = durationSettings(schema);

    it('has duration settings, each with an environment variable', () => {
      expect(settings.length).toBeGreaterThan(0);
      for (const { path } of settings) expect(fields[path]?.env, path).toBeTruthy();
    });

    it.each(settings)('$path', async ({ path, bounds }) => {
      const env = fields[path]!.env!;
      for (const value of [bounds.min, bounds.max]) {
        expect(() => parseEnv(backend, { ...base, ...companions?.[path], [env]: ms(value) })).not.toThrow();
      }
      for (const value of bounds.min > 0 ? [bounds.max + 1, bounds.min - 1] : [bounds.max + 1]) {
        const error = await refusedFromEnv(backend, { ...base, ...companions?.[path], [env]: ms(value) });
        expect(error, `${env}=${ms(value)}`).toMatchObject({ code: 'CONFIG_INVALID', field: env });
        expect(error.message).toContain(`${env}: expected a duration ${describeDurationBounds(bounds)}`);
      }
      expect(bounds.max).toBeLessThanOrEqual(MAX_DURATION_MS);
    });

    it('docs/configuration.md states each one’s bounds', async () => {
      const text = await readFile(join(DOCS, 'configuration.md'), 'utf8');
      const part = text.slice(text.indexOf(section));
      const table = part.slice(0, part.indexOf('\n#', section.length));
      for (const { path, bounds } of settings) {
        const env = fields[path]!.env!;
        const row = table.split('\n').find((l) => l.includes(`\`${env}\``)) ?? '';
        expect(row, `${backend} ${env}`).toContain(formatDurationBound(bounds.max));
        if (bounds.min > 0) expect(row, `${backend} ${env}`).toContain(formatDurationBound(bounds.min));
      }
    });
  },
);

/** The findings of issue 13 about durations, one row each, as the user met them. */
const findings: Array<{ finding: string; check: () => Promise<void> }> = [
  {
    finding: 'serious 1: --handler-timeout 600h lets a 300 ms handler finish',
    check: async () => {
      const t = await oneTask();
      const result = await baton(
        ['worker', '--handler', './short.mjs', '--once', '--handler-timeout', '600h'],
        {
          env: t.env,
          cwd: files.dir,
        },
      );
      expect(result.code, result.stderr).toBe(0);
      expect(await t.source.get(t.id)).toMatchObject({ status: 'done', result: 'finished' });
    },
  },
  {
    finding: 'serious 1: --stop-grace 600h lets the running handler finish after SIGTERM',
    check: async () => {
      const t = await oneTask();
      const worker = new Running(
        ['worker', '--handler', './slow.mjs', '--stop-grace', '600h', '--log-level', 'debug'],
        { env: t.env, cwd: files.dir },
      );
      await worker.waitFor((line) => line.msg === 'task started');
      worker.kill('SIGTERM');
      expect(await worker.exited).toBe(143);
      expect(await t.source.get(t.id)).toMatchObject({ status: 'done', result: 'finished' });
    },
  },
  {
    finding: 'serious 1: BATON_SESSION_TTL=1000h (memory) is refused at startup, naming it',
    check: async () => {
      const t = await oneTask();
      const result = await baton(['worker', '--handler', './short.mjs', '--once'], {
        env: { ...t.env, BATON_SESSION_TTL: '1000h' },
        cwd: files.dir,
        timeoutMs: 20_000,
      });
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('BATON_SESSION_TTL: expected a duration from 1ms to 24h');
      expect((await t.source.get(t.id))?.status).toBe('pending');
    },
  },
  {
    finding: 'serious 1: BATON_SESSION_TTL=2000h (DynamoDB) is refused at startup, naming it',
    check: async () => {
      const result = await baton(['locks', 'list'], {
        env: {
          BATON_BACKEND: 'dynamodb',
          AWS_ENDPOINT_URL_DYNAMODB: `http://127.0.0.1:${await closedPort()}`,
          BATON_SESSION_TTL: '2000h',
        },
      });
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('BATON_SESSION_TTL: expected a duration from 100ms to 24h');
    },
  },
  {
    finding: 'serious 1: --every 2592000000 makes one pass, not thousands a second',
    check: async () => {
      const t = await oneTask();
      const worker = new Running(
        ['worker', '--handler', './short.mjs', '--every', '2592000000', '--log-level', 'debug'],
        { env: t.env, cwd: files.dir },
      );
      await worker.waitFor((line) => line.msg === 'pass finished');
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      worker.kill('SIGTERM');
      await worker.exited;
      expect(worker.lines.filter((line) => line.msg === 'pass finished')).toHaveLength(1);
    },
  },
  ...['0', '1ms', '99ms'].map((every) => ({
    finding: `medium 4: --every ${every} is refused with the floor`,
    check: async () => {
      const result = await baton(['worker', '--handler', './short.mjs', '--every', every], {
        cwd: files.dir,
      });
      expect(result.code).toBe(2);
      expect(result.stderr).toContain("option '--every <duration>'");
      expect(result.stderr).toContain('from 100ms to 8760h');
    },
  })),
  ...['1000h', '1ms'].map((timeout) => ({
    finding: `low: BATON_PG_STATEMENT_TIMEOUT=${timeout} is refused naming the variable and its bounds`,
    check: async () => {
      const result = await baton(['migrate'], {
        env: {
          DATABASE_URL: db.connectionString,
          BATON_PG_SCHEMA: uniqueSchema('st'),
          BATON_PG_STATEMENT_TIMEOUT: timeout,
        },
      });
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('BATON_PG_STATEMENT_TIMEOUT: expected a duration from 1s to 24h');
      expect(result.stderr).not.toContain('is PostgreSQL running');
    },
  })),
  {
    finding: 'low: a too-short Consul TTL from the environment names BATON_CONSUL_ALLOW_SHORT_TTL',
    check: async () => {
      const result = await baton(['locks', 'list'], {
        env: {
          BATON_BACKEND: 'consul',
          CONSUL_HTTP_ADDR: `127.0.0.1:${await closedPort()}`,
          BATON_SESSION_TTL: '5s',
        },
      });
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('BATON_SESSION_TTL');
      expect(result.stderr).toContain('BATON_CONSUL_ALLOW_SHORT_TTL=true');
      expect(result.stderr).not.toMatch(/\ballowShortTtl\b/);
    },
  },
  {
    finding: 'low: BATON_SESSION_TTL=50ms with short TTLs allowed names the variable',
    check: async () => {
      const result = await baton(['locks', 'list'], {
        env: {
          BATON_BACKEND: 'consul',
          CONSUL_HTTP_ADDR: `127.0.0.1:${await closedPort()}`,
          BATON_SESSION_TTL: '50ms',
          BATON_CONSUL_ALLOW_SHORT_TTL: 'true',
        },
      });
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('BATON_SESSION_TTL: expected a duration from 100ms to 24h');
    },
  },
  {
    finding: "low: docs say the DynamoDB request timeout is capped by the operation's budget",
    check: async () => {
      const text = await readFile(join(DOCS, 'configuration.md'), 'utf8');
      const dynamodb = text.slice(text.indexOf('### DynamoDB'), text.indexOf('### A custom backend'));
      const row = dynamodb.split('\n').find((l) => l.includes('`BATON_DYNAMODB_REQUEST_TIMEOUT`')) ?? '';
      expect(row).toMatch(/capped by the operation's budget/);
      expect(dynamodb).toMatch(/no answer within 1000 ms/);
    },
  },
];

describe.concurrent('issue 13: durations, as a hostile user met them', () => {
  it.each(findings)('$finding', async ({ check }) => {
    await check();
  });
});
