import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ConfigWarning, createLockProvider, isBatonError, secretFields } from '@baton/core';
import { type ConsulTestServer, startConsulTestServer } from '@baton/test-servers/consul-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backend } from '../src/index.js';

// Issue 13: where the token comes from, what is wrong with it, and which one wins, each named in the error.
const RIGHT = 'consul-right-token-5e0b';
const WRONG = 'consul-wrong-token-SENTINEL-81d4';

let server: ConsulTestServer;
let dir: string;
const file = (name: string) => join(dir, name);

beforeAll(async () => {
  [server, dir] = await Promise.all([
    startConsulTestServer({ aclTokens: [RIGHT] }),
    mkdtemp(join(tmpdir(), 'baton-consul-token-')),
  ]);
  await Promise.all([
    writeFile(file('right'), `${RIGHT}\n`),
    writeFile(file('wrong'), `  ${WRONG}\n`),
    writeFile(file('empty'), ''),
    writeFile(file('blank'), ' \n\t\n'),
    writeFile(file('two-lines'), `${WRONG}\nsecond line\n`),
  ]);
});
afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

interface Outcome {
  error: unknown;
  warnings: ConfigWarning[];
}

/** Creates a provider from `env` and reads one key (which needs a token the agent knows). */
async function attempt(env: Record<string, string>): Promise<Outcome> {
  const warnings: ConfigWarning[] = [];
  try {
    const provider = await createLockProvider(
      { BATON_BACKEND: 'consul', CONSUL_HTTP_ADDR: server.url, ...env },
      { onWarning: (warning) => warnings.push(warning) },
    );
    try {
      await provider.getHolder('preflight');
    } finally {
      await provider.close();
    }
    return { error: undefined, warnings };
  } catch (error) {
    return { error, warnings };
  }
}

interface Row {
  name: string;
  env: () => Record<string, string>;
  code?: string;
  field?: string;
  message?: RegExp;
  notMessage?: RegExp;
  warning?: RegExp;
}

const rows: Row[] = [
  {
    name: 'a CR/LF in CONSUL_HTTP_TOKEN is a config error naming it, not "check CONSUL_HTTP_ADDR"',
    env: () => ({ CONSUL_HTTP_TOKEN: `${WRONG}\r\n` }),
    code: 'CONFIG_INVALID',
    field: 'CONSUL_HTTP_TOKEN',
    message: /CONSUL_HTTP_TOKEN: contains a line break/,
    notMessage: /CONSUL_HTTP_ADDR/,
  },
  {
    name: 'a control character in CONSUL_HTTP_TOKEN is a config error',
    env: () => ({ CONSUL_HTTP_TOKEN: `${WRONG}\u0007` }),
    code: 'CONFIG_INVALID',
    field: 'CONSUL_HTTP_TOKEN',
    message: /control or non-ASCII character/,
  },
  {
    name: 'a wrong token from CONSUL_HTTP_TOKEN names CONSUL_HTTP_TOKEN',
    env: () => ({ CONSUL_HTTP_TOKEN: WRONG }),
    code: 'PERMISSION_DENIED',
    message: /check CONSUL_HTTP_TOKEN \(token\)/,
  },
  {
    name: 'a wrong token read from CONSUL_HTTP_TOKEN_FILE names CONSUL_HTTP_TOKEN_FILE',
    env: () => ({ CONSUL_HTTP_TOKEN_FILE: file('wrong') }),
    code: 'PERMISSION_DENIED',
    message: /check CONSUL_HTTP_TOKEN_FILE \(tokenFile\)/,
    notMessage: /check CONSUL_HTTP_TOKEN[^_]/,
  },
  {
    name: 'no token at all says none was sent',
    env: () => ({}),
    code: 'PERMISSION_DENIED',
    message: /No ACL token was sent/,
  },
  {
    name: 'an empty token file is refused, not taken as "no token"',
    env: () => ({ CONSUL_HTTP_TOKEN_FILE: file('empty') }),
    code: 'CONFIG_INVALID',
    field: 'CONSUL_HTTP_TOKEN_FILE',
    message: /is empty\. Fix: write the ACL token into it, or unset CONSUL_HTTP_TOKEN_FILE/,
  },
  {
    name: 'a token file of whitespace only is refused',
    env: () => ({ CONSUL_HTTP_TOKEN_FILE: file('blank') }),
    code: 'CONFIG_INVALID',
    field: 'CONSUL_HTTP_TOKEN_FILE',
    message: /is empty/,
  },
  {
    name: 'a token file of two lines is refused',
    env: () => ({ CONSUL_HTTP_TOKEN_FILE: file('two-lines') }),
    code: 'CONFIG_INVALID',
    field: 'CONSUL_HTTP_TOKEN_FILE',
    message: /contains a line break/,
  },
  {
    name: 'the token itself put in CONSUL_HTTP_TOKEN_FILE is not echoed',
    env: () => ({ CONSUL_HTTP_TOKEN_FILE: WRONG }),
    code: 'CONFIG_INVALID',
    field: 'CONSUL_HTTP_TOKEN_FILE',
    message: /cannot read \(a value of \d+ characters, not shown/,
  },
  {
    name: 'both set: the token file wins, as in the consul CLI, with a warning',
    env: () => ({ CONSUL_HTTP_TOKEN_FILE: file('right'), CONSUL_HTTP_TOKEN: WRONG }),
    warning:
      /both CONSUL_HTTP_TOKEN_FILE .* and CONSUL_HTTP_TOKEN are set: using the token in CONSUL_HTTP_TOKEN_FILE/,
  },
  {
    name: 'both set, the file holding the wrong one: the file still wins and is named',
    env: () => ({ CONSUL_HTTP_TOKEN_FILE: file('wrong'), CONSUL_HTTP_TOKEN: RIGHT }),
    code: 'PERMISSION_DENIED',
    message: /check CONSUL_HTTP_TOKEN_FILE/,
    warning: /CONSUL_HTTP_TOKEN is ignored/,
  },
  {
    name: 'the right token from the file alone works without a warning',
    env: () => ({ CONSUL_HTTP_TOKEN_FILE: file('right') }),
  },
  {
    name: 'an address with credentials is refused, naming CONSUL_HTTP_ADDR, credentials masked',
    env: () => ({
      CONSUL_HTTP_ADDR: server.url.replace('://', `://user:${WRONG}@`),
      CONSUL_HTTP_TOKEN: RIGHT,
    }),
    code: 'CONFIG_INVALID',
    field: 'CONSUL_HTTP_ADDR',
    message: /must not carry credentials/,
  },
];

describe.concurrent('the Consul ACL token: source, validity and precedence', () => {
  it.each(rows)('$name', async (row) => {
    const { error, warnings } = await attempt(row.env());
    if (row.code === undefined) expect(error).toBeUndefined();
    else {
      expect(isBatonError(error) && error.code, String(error)).toBe(row.code);
      const message = (error as Error).message;
      if (row.field) expect((error as { field?: string }).field).toBe(row.field);
      if (row.message) expect(message).toMatch(row.message);
      if (row.notMessage) expect(message).not.toMatch(row.notMessage);
      expect(message).not.toContain(WRONG);
    }
    if (row.warning) {
      expect(warnings.map((w) => w.message).join('\n')).toMatch(row.warning);
      expect(warnings[0]?.field).toBe('CONSUL_HTTP_TOKEN_FILE');
    } else expect(warnings).toEqual([]);
    for (const warning of warnings) expect(warning.message).not.toContain(WRONG);
  });

  it('declares its secrets: the token, and credentials in the address', () => {
    expect(secretFields(backend.fields).map((f) => f.docs.env)).toEqual([
      'CONSUL_HTTP_ADDR',
      'CONSUL_HTTP_TOKEN',
    ]);
  });
});
