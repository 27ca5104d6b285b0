import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type ConfigWarning,
  createLockProvider,
  type FieldDocs,
  isBatonError,
  MemoryLockProvider,
  parseConfig,
  quoteForMessage,
  quotePathForMessage,
  REDACTED,
  redact,
  redactUrls,
  rememberSecret,
  secretFields,
} from '../src/index.js';

describe('redactUrls masks URL credentials wherever a URL appears', () => {
  const rows: Array<[string, string]> = [
    ['postgres://app:hunter2@db:5432/app', `postgres://app:${REDACTED}@db:5432/app`],
    ['postgres://app@db/app', 'postgres://app@db/app'],
    ['postgres://db:5432/app', 'postgres://db:5432/app'],
    [
      'postgres://app@db/app?password=hunter2&sslmode=require',
      `postgres://app@db/app?password=${REDACTED}&sslmode=require`,
    ],
    ['postgres://app@db/app?sslpassword=hunter2', `postgres://app@db/app?sslpassword=${REDACTED}`],
    ['https://agent:8501/?token=hunter2', `https://agent:8501/?token=${REDACTED}`],
    ['https://s3/x?X-Amz-Signature=abc123&a=1', `https://s3/x?X-Amz-Signature=${REDACTED}&a=1`],
    // Malformed URLs are never parsed, only scanned.
    ['http://u:hunter2@[bad', `http://u:${REDACTED}@[bad`],
    ['postgres://app:pa/ss@host/db', `postgres://app:${REDACTED}@host/db`],
    ['postgres://app:p@ss@host/db', `postgres://app:${REDACTED}@host/db`],
    ['postgress://app:hunter2@127.0.0.1:5432/app', `postgress://app:${REDACTED}@127.0.0.1:5432/app`],
    // Inside prose and JSON.
    ['could not reach postgres://a:hunter2@h now', `could not reach postgres://a:${REDACTED}@h now`],
    ['{"url":"postgres://a:hunter2@h/db","n":1}', `{"url":"postgres://a:${REDACTED}@h/db","n":1}`],
    // Placeholders in hints are not URLs with credentials.
    ['postgres://app:<password>@127.0.0.1:5432/app', 'postgres://app:<password>@127.0.0.1:5432/app'],
    ['no URL here: a=1 b=2', 'no URL here: a=1 b=2'],
  ];
  it.each(rows)('%s', (input, expected) => {
    expect(redactUrls(input)).toBe(expected);
  });

  it('redact() also masks libpq keyword/value credentials in free text', () => {
    expect(redact('host=db password=hunter2 user=app')).toBe(`host=db password=${REDACTED} user=app`);
    expect(redact('PGPASSWORD=hunter2 psql')).toBe(`PGPASSWORD=${REDACTED} psql`);
  });
});

describe('parseConfig never echoes a declared secret', () => {
  const fields: Record<string, FieldDocs> = {
    token: { env: 'DEMO_TOKEN', secret: true },
    url: { env: 'DEMO_URL', secret: 'url' },
    'auth.password': { env: 'DEMO_PASSWORD', secret: true },
    name: { env: 'DEMO_NAME' },
  };
  const schema = z
    .object({
      token: z
        .string()
        .regex(/^[a-f0-9-]+$/, 'expected a UUID')
        .optional(),
      url: z
        .string()
        .regex(/^demo:/, 'expected a demo:// URL')
        .optional(),
      auth: z
        .object({ password: z.string().min(40, 'too short') })
        .strict()
        .optional(),
      name: z.string().max(3).optional(),
      count: z.number().optional(),
    })
    .strict();
  // A short secret is only ever masked by position (a field, a URL part), never searched for in text.
  const SHORT = 'QZXWK';
  const LONG = 'QZXWK-long-sentinel-9f1b';

  const rows: Array<{ name: string; input: (secret: string) => unknown; fromEnv?: boolean }> = [
    { name: 'a secret field with a bad value', input: (s) => ({ token: s }) },
    { name: 'a secret field of the wrong type', input: (s) => ({ token: { nested: s } }) },
    { name: 'a bad URL field with a password', input: (s) => ({ url: `postgres://app:${s}@db/app` }) },
    { name: 'a bad URL field with a query password', input: (s) => ({ url: `x://db/app?password=${s}` }) },
    { name: 'a nested secret field', input: (s) => ({ auth: { password: s } }) },
    { name: 'an unknown key next to a secret', input: (s) => ({ token: 'abc', tokn: s }) },
    {
      name: 'an unknown key beside a valid secret',
      input: (s) => ({ token: 'abc', auth: { password: `${s}${s}${s}` }, extra: 1 }),
    },
    {
      name: 'an unknown nested key next to a secret',
      input: (s) => ({ auth: { password: `${s}${s}${s}`, pasword: s } }),
    },
    {
      name: 'another field bad, secrets beside it',
      input: (s) => ({ name: 'toolong', token: s, url: `demo://u:${s}@h` }),
    },
    { name: 'the whole input of the wrong shape', input: (s) => [{ token: s }] },
    { name: 'from the environment', input: (s) => ({ token: s, url: `postgres://u:${s}@h` }), fromEnv: true },
  ];
  it.each(rows.flatMap((row) => [SHORT, LONG].map((secret) => [row.name, secret, row] as const)))(
    '%s (secret %s)',
    (_name, secret, row) => {
      let error: unknown;
      try {
        parseConfig(schema, row.input(secret), { backend: 'demo', fields, fromEnv: row.fromEnv ?? false });
      } catch (caught) {
        error = caught;
      }
      expect(isBatonError(error, 'CONFIG_INVALID')).toBe(true);
      const message = (error as Error).message;
      expect(message).not.toContain(secret);
      expect(message).toMatch(/\[redacted\]|an object with keys|an array of/);
    },
  );

  it('still shows values that are not secret', () => {
    expect(() => parseConfig(schema, { name: 'toolong' }, { backend: 'demo', fields })).toThrow(/"toolong"/);
  });

  it('remembers long secrets it has seen, valid or not, so redact() masks them in any text', () => {
    const secret = 'Remembered-sentinel-71c2';
    parseConfig(
      schema,
      {
        name: 'ok',
        url: `demo://u:${secret}@h`,
        auth: { password: 'pw-long-enough-for-the-forty-char-minimum' },
      },
      {
        backend: 'demo',
        fields,
      },
    );
    expect(redact(`a server echoed ${secret} back`)).toBe(`a server echoed ${REDACTED} back`);
    expect(redact('the password pw-long-enough-for-the-forty-char-minimum')).toBe(`the password ${REDACTED}`);
  });

  it('masks remembered secrets in their JSON-escaped and percent-encoded forms', () => {
    const secret = 'quo"te/and space';
    rememberSecret(secret);
    expect(redact(JSON.stringify({ err: `x ${secret} y` }))).not.toContain('quo\\"te');
    expect(redact(`postgres://h/db?x=${encodeURIComponent(secret)}`)).not.toContain(
      encodeURIComponent(secret),
    );
  });

  it('does not search free text for short values (a password "baton" would garble every message)', () => {
    rememberSecret('baton');
    expect(redact('baton: the lock is held')).toBe('baton: the lock is held');
  });

  it('lists the declared secret fields', () => {
    expect(secretFields(fields).map((f) => f.path)).toEqual(['token', 'url', 'auth.password']);
  });
});

describe('messages cut what they echo', () => {
  it('quoteForMessage cuts a 10 KB key', () => {
    const quoted = quoteForMessage('k'.repeat(10_000));
    expect(quoted.length).toBeLessThan(150);
    expect(quoted).toMatch(/…" \(10000 characters\)$/);
    expect(quoteForMessage('short')).toBe('"short"');
  });

  it('a lock key too long to use is not echoed whole', async () => {
    const provider = new MemoryLockProvider();
    const session = await provider.openSession();
    const error = await session.tryAcquire('k'.repeat(10_000)).catch((e: unknown) => e);
    expect(isBatonError(error, 'INVALID_ARGUMENT')).toBe(true);
    expect((error as Error).message.length).toBeLessThan(300);
    expect((error as Error).message).toMatch(/10000 characters/);
    await provider.close();
  });

  it.each([
    ['/etc/consul/token', '"/etc/consul/token"'],
    ['0f3c1a4e-1111-2222-3333-444455556666', /not shown: it has no '\/'/],
    ['-----BEGIN PRIVATE KEY-----\nMIIE/abc\n-----END PRIVATE KEY-----', /not shown/],
  ])('quotePathForMessage(%j)', (value, expected) => {
    const shown = quotePathForMessage(value);
    if (typeof expected === 'string') expect(shown).toBe(expected);
    else {
      expect(shown).toMatch(expected);
      expect(shown).not.toContain(value.slice(0, 12));
    }
  });
});

describe('BATON_BACKEND_MODULE', () => {
  let dir: string;
  const url = (name: string) => pathToFileURL(join(dir, name)).href;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'baton-module-'));
    await writeFile(join(dir, 'syntax.mjs'), 'export const backend = {\n  name: "custom",,\n};\n');
    await writeFile(
      join(dir, 'imports-missing.mjs'),
      'import "baton-no-such-package-3f1a";\nexport const backend = {};\n',
    );
    await writeFile(join(dir, 'throws.mjs'), 'throw new Error("boom at top level");\n');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const rows: Array<{ name: string; module: () => string; message: RegExp; npmInstall: boolean }> = [
    {
      name: 'a module with a syntax error shows the syntax error',
      module: () => url('syntax.mjs'),
      // Node says SyntaxError; under vitest the bundler's parser reports it first.
      message: /was found but could not be loaded: \w*Error: /,
      npmInstall: false,
    },
    {
      name: 'a module whose own import fails shows that import',
      module: () => url('imports-missing.mjs'),
      message: /could not be loaded: .*baton-no-such-package-3f1a/,
      npmInstall: false,
    },
    {
      name: 'a module that throws while loading shows the exception',
      module: () => url('throws.mjs'),
      message: /could not be loaded: boom at top level/,
      npmInstall: false,
    },
    {
      name: 'a file that does not exist says so',
      module: () => url('nope.mjs'),
      message: /there is no such file/,
      npmInstall: false,
    },
    {
      name: 'a package that is not installed suggests npm install',
      module: () => 'baton-no-such-backend-9d2e',
      message: /not installed\. Fix: npm install baton-no-such-backend-9d2e/,
      npmInstall: true,
    },
  ];
  it.each(rows)('$name', async ({ module, message, npmInstall }) => {
    const error = await createLockProvider({ BATON_BACKEND: 'custom', BATON_BACKEND_MODULE: module() }).catch(
      (e: unknown) => e,
    );
    expect(isBatonError(error, 'CONFIG_INVALID')).toBe(true);
    expect((error as { field: string }).field).toBe('BATON_BACKEND_MODULE');
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message.includes('npm install')).toBe(npmInstall);
  });

  const ignored: Array<[string, Record<string, string> | { backend: string; module: string }, string]> = [
    ['BATON_BACKEND unset', { BATON_BACKEND_MODULE: 'some-backend' }, 'BATON_BACKEND_MODULE'],
    [
      'BATON_BACKEND=memory',
      { BATON_BACKEND: 'memory', BATON_BACKEND_MODULE: 'some-backend' },
      'BATON_BACKEND_MODULE',
    ],
    ['a config object with backend memory', { backend: 'memory', module: 'some-backend' }, 'module'],
  ];
  it.each(ignored)(
    'is ignored with a warning when the backend is memory (%s)',
    async (_name, input, field) => {
      const warnings: ConfigWarning[] = [];
      const provider = await createLockProvider(input, { onWarning: (w) => warnings.push(w) });
      expect(provider.backend).toBe('memory');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]?.field).toBe(field);
      expect(warnings[0]?.message).toMatch(/memory.*not loaded/);
      await provider.close();
    },
  );

  it('no warning without a module', async () => {
    const warnings: ConfigWarning[] = [];
    const provider = await createLockProvider(
      { BATON_BACKEND: 'memory' },
      { onWarning: (w) => warnings.push(w) },
    );
    expect(warnings).toEqual([]);
    await provider.close();
  });
});
