import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ConfigError, createLockProvider, parseConfig } from '@baton/core';
import { describe, expect, it } from 'vitest';
import {
  backend,
  ConsulLockProvider,
  consulConfigSchema,
  consulFields,
  providerOptions,
} from '../src/index.js';

async function configError(env: Record<string, string>): Promise<ConfigError> {
  try {
    const provider = await createLockProvider({ BATON_BACKEND: 'consul', ...env });
    await provider.close();
  } catch (error) {
    expect(error).toMatchObject({ code: 'CONFIG_INVALID' });
    return error as ConfigError;
  }
  throw new Error('expected a configuration error');
}

function parse(input: Record<string, unknown>) {
  return parseConfig(consulConfigSchema, input, { backend: 'consul', fields: consulFields });
}

describe('consul config', () => {
  it('has the documented defaults', () => {
    expect(parse({})).toEqual({
      address: 'http://127.0.0.1:8500',
      prefix: 'baton/',
      ttlMs: 15_000,
      allowShortTtl: false,
      lockDelayMs: 15_000,
      behavior: 'delete',
      checks: [],
      sessionName: 'baton',
      requestTimeoutMs: 10_000,
      watchWaitMs: 60_000,
    });
  });

  it('accepts CONSUL_HTTP_ADDR as host:port or a URL, and CONSUL_HTTP_SSL for schemeless addresses', () => {
    const fromEnv = (env: Record<string, string>) => parse(backend.fromEnv(env)).address;
    expect(fromEnv({ CONSUL_HTTP_ADDR: 'consul.internal:8500' })).toBe('http://consul.internal:8500');
    expect(fromEnv({ CONSUL_HTTP_ADDR: 'https://consul.internal:8501' })).toBe(
      'https://consul.internal:8501',
    );
    expect(fromEnv({ CONSUL_HTTP_ADDR: 'consul.internal:8501', CONSUL_HTTP_SSL: 'true' })).toBe(
      'https://consul.internal:8501',
    );
    expect(fromEnv({ CONSUL_HTTP_ADDR: 'http://10.0.0.1:8500', CONSUL_HTTP_SSL: 'true' })).toBe(
      'http://10.0.0.1:8500',
    );
  });

  it('reads every documented variable', () => {
    const config = parse(
      backend.fromEnv({
        CONSUL_HTTP_TOKEN: 's3cret',
        BATON_CONSUL_PREFIX: 'jobs/locks/',
        BATON_SESSION_TTL: '30s',
        BATON_LOCK_DELAY: '0',
        BATON_CONSUL_BEHAVIOR: 'delete',
        BATON_CONSUL_CHECKS: 'serfHealth, custom',
        BATON_CONSUL_DATACENTER: 'dc2',
        BATON_CONSUL_SESSION_NAME: 'worker-1',
        BATON_CONSUL_TIMEOUT: '5s',
        BATON_CONSUL_MONITOR_AFTER: '2s',
        BATON_CONSUL_WAIT: '30s',
      }),
    );
    expect(config).toMatchObject({
      token: 's3cret',
      prefix: 'jobs/locks/',
      ttlMs: 30_000,
      lockDelayMs: 0,
      behavior: 'delete',
      checks: ['serfHealth', 'custom'],
      datacenter: 'dc2',
      sessionName: 'worker-1',
      requestTimeoutMs: 5_000,
      monitorAfterMs: 2_000,
      watchWaitMs: 30_000,
    });
  });

  it('names the environment variable and the fix for each bad value', async () => {
    const cases: Array<[Record<string, string>, string, RegExp]> = [
      [{ CONSUL_HTTP_ADDR: 'ftp://consul:21' }, 'CONSUL_HTTP_ADDR', /unsupported scheme/],
      [{ CONSUL_HTTP_ADDR: 'http://consul:8500/v1' }, 'CONSUL_HTTP_ADDR', /without a path/],
      [{ BATON_SESSION_TTL: '5s' }, 'BATON_SESSION_TTL', /minimum session TTL is 10s/],
      [{ BATON_SESSION_TTL: 'soon' }, 'BATON_SESSION_TTL', /duration/],
      [{ BATON_LOCK_DELAY: '90s' }, 'BATON_LOCK_DELAY', /up to 60s/],
      [{ BATON_CONSUL_BEHAVIOR: 'vanish' }, 'BATON_CONSUL_BEHAVIOR', /release or delete/],
      [{ BATON_CONSUL_PREFIX: '/abs/' }, 'BATON_CONSUL_PREFIX', /no leading/],
      [{ BATON_CONSUL_PREFIX: 'a/../b/' }, 'BATON_CONSUL_PREFIX', /segment/],
      [{ CONSUL_CLIENT_CERT: '/tmp/cert.pem' }, 'CONSUL_CLIENT_KEY', /both certFile and keyFile/],
    ];
    for (const [env, field, message] of cases) {
      const error = await configError(env);
      expect(error.field, JSON.stringify(env)).toBe(field);
      expect(error.message).toMatch(message);
      expect(error.message).toContain(`Fix: set ${field}`);
    }
  });

  it('names the config key (and its env var) for object configuration', async () => {
    const error = await createLockProvider({ backend: 'consul', ttlMs: '2s' }).catch(
      (e: unknown) => e as ConfigError,
    );
    expect(error).toMatchObject({ code: 'CONFIG_INVALID', field: 'ttlMs' });
    expect((error as ConfigError).message).toContain('(env BATON_SESSION_TTL)');
  });

  it('never echoes the token in configuration errors', async () => {
    const token = 'f7e3c1d2-very-secret';
    const error = await configError({
      CONSUL_HTTP_TOKEN: token,
      BATON_SESSION_TTL: 'x',
      CONSUL_HTTP_ADDR: 'ftp://y',
    });
    expect(error.message).not.toContain(token);
    expect(JSON.stringify(parse({ token: 42 }))).toContain('"token":"42"');
  });

  it('reports unreadable CA, token and certificate files by their variable', async () => {
    const error = await configError({ CONSUL_CACERT: '/nonexistent/ca.pem' });
    expect(error.field).toBe('CONSUL_CACERT');
    expect(error.message).toMatch(/cannot read "\/nonexistent\/ca.pem" \(ENOENT\)/);
    const tokenError = await configError({ CONSUL_HTTP_TOKEN_FILE: '/nonexistent/token' });
    expect(tokenError.field).toBe('CONSUL_HTTP_TOKEN_FILE');
  });

  it('reads the token file and the TLS files into provider options', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'baton-consul-'));
    await writeFile(join(dir, 'token'), 'from-file\n');
    await writeFile(join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\n');
    const options = await providerOptions(
      parse({ tokenFile: join(dir, 'token'), caFile: join(dir, 'ca.pem'), address: 'https://c:8501' }),
    );
    expect(options.token).toBe('from-file');
    expect(options.tls?.ca).toContain('BEGIN CERTIFICATE');
    expect(options.address).toBe('https://c:8501');
  });

  it('creates a provider from the environment through core’s registry without contacting Consul', async () => {
    const provider = await createLockProvider({
      BATON_BACKEND: 'consul',
      CONSUL_HTTP_ADDR: '127.0.0.1:1',
      BATON_SESSION_TTL: '500ms',
      BATON_CONSUL_ALLOW_SHORT_TTL: 'true',
    });
    try {
      expect(provider).toBeInstanceOf(ConsulLockProvider);
      expect(provider.backend).toBe('consul');
      expect(provider.capabilities).toEqual({
        nativeWatch: true,
        minTtlMs: 100,
        lockDelay: true,
        list: true,
        forceRelease: true,
        fairQueue: true,
        holderTimes: true,
        waiters: true,
      });
      // Nothing listens on port 1: a typed, retryable error, never a hang.
      await expect(provider.openSession()).rejects.toMatchObject({ code: 'UNAVAILABLE', retryable: true });
    } finally {
      await provider.close();
    }
  });
});
