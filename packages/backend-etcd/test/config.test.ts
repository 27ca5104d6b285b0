import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ConfigError, createLockProvider, parseConfig } from '@baton/core';
import { describe, expect, it } from 'vitest';
import { backend, EtcdLockProvider, etcdConfigSchema, etcdFields, providerOptions } from '../src/index.js';

const SECRET = 'hunter2-etcd-password-9f3a';

async function configError(env: Record<string, string>): Promise<ConfigError> {
  try {
    const provider = await createLockProvider({ BATON_BACKEND: 'etcd', ...env });
    await provider.close();
  } catch (error) {
    expect(error).toMatchObject({ code: 'CONFIG_INVALID' });
    return error as ConfigError;
  }
  throw new Error('expected a configuration error');
}

function parse(input: Record<string, unknown>) {
  return parseConfig(etcdConfigSchema, input, { backend: 'etcd', fields: etcdFields });
}

function fromEnv(env: Record<string, string>) {
  return parseConfig(etcdConfigSchema, backend.fromEnv(env), {
    backend: 'etcd',
    fields: etcdFields,
    fromEnv: true,
  });
}

describe('etcd config', () => {
  it('has the documented defaults', () => {
    expect(parse({})).toEqual({
      endpoints: ['http://127.0.0.1:2379'],
      prefix: 'baton/',
      ttlMs: 15_000,
      lockDelayMs: 15_000,
      requestTimeoutMs: 10_000,
    });
  });

  it('reads ETCD_ENDPOINTS, else ETCDCTL_ENDPOINTS, as comma-separated host:port or URLs', () => {
    expect(fromEnv({ ETCD_ENDPOINTS: '10.0.0.1:2379, https://10.0.0.2:2379' }).endpoints).toEqual([
      'http://10.0.0.1:2379',
      'https://10.0.0.2:2379',
    ]);
    expect(fromEnv({ ETCDCTL_ENDPOINTS: 'etcd-0:2379,etcd-1:2379' }).endpoints).toEqual([
      'http://etcd-0:2379',
      'http://etcd-1:2379',
    ]);
    // ETCD_ENDPOINTS wins, and a broken ETCDCTL_ENDPOINTS beside it does not matter.
    expect(fromEnv({ ETCD_ENDPOINTS: 'a:2379', ETCDCTL_ENDPOINTS: 'ftp://x' }).endpoints).toEqual([
      'http://a:2379',
    ]);
  });

  it('reads the etcdctl credential and TLS variables and baton variables', () => {
    const config = fromEnv({
      ETCDCTL_USER: 'worker',
      ETCDCTL_PASSWORD: SECRET,
      ETCDCTL_CACERT: '/etc/etcd/ca.pem',
      ETCDCTL_CERT: '/etc/etcd/client.pem',
      ETCDCTL_KEY: '/etc/etcd/client-key.pem',
      BATON_ETCD_PREFIX: 'jobs/',
      BATON_SESSION_TTL: '10s',
      BATON_LOCK_DELAY: '0',
      BATON_ETCD_TIMEOUT: '2s',
    });
    expect(config).toMatchObject({
      auth: { username: 'worker', password: SECRET },
      caFile: '/etc/etcd/ca.pem',
      certFile: '/etc/etcd/client.pem',
      keyFile: '/etc/etcd/client-key.pem',
      prefix: 'jobs/',
      ttlMs: 10_000,
      lockDelayMs: 0,
      requestTimeoutMs: 2_000,
    });
  });

  it('accepts ETCDCTL_USER as name:password, as etcdctl --user does', () => {
    expect(fromEnv({ ETCDCTL_USER: `worker:${SECRET}` }).auth).toEqual({
      username: 'worker',
      password: SECRET,
    });
  });

  it.each([
    [{ ETCD_ENDPOINTS: 'ftp://etcd:2379' }, 'ETCD_ENDPOINTS', /unsupported scheme/],
    [{ ETCDCTL_ENDPOINTS: 'http://etcd:2379/v3' }, 'ETCDCTL_ENDPOINTS', /without a path/],
    [{ ETCD_ENDPOINTS: ' , ' }, 'ETCD_ENDPOINTS', /at least one endpoint/],
    [{ BATON_SESSION_TTL: '500ms' }, 'BATON_SESSION_TTL', /from 1s to 24h/],
    [{ BATON_LOCK_DELAY: '2h' }, 'BATON_LOCK_DELAY', /up to 1h|to 1h/],
    [{ ETCDCTL_CERT: '/c.pem' }, 'ETCDCTL_KEY', /needs both ETCDCTL_CERT and ETCDCTL_KEY/],
    [{ ETCDCTL_PASSWORD: SECRET }, 'ETCDCTL_USER', /a password needs a user name/],
    [{ ETCDCTL_USER: `w:${SECRET}`, ETCDCTL_PASSWORD: SECRET }, 'ETCDCTL_PASSWORD', /given twice/],
  ])('names the field at fault: %j', async (env, field, message) => {
    const error = await configError(env);
    expect(error.field).toBe(field);
    expect(error.message).toMatch(message);
    expect(error.message).not.toContain(SECRET);
  });

  it('never echoes credentials given in an endpoint URL', async () => {
    const error = await configError({ ETCD_ENDPOINTS: `http://root:${SECRET}@etcd:2379` });
    expect(error.field).toBe('ETCD_ENDPOINTS');
    expect(error.message).toMatch(/must not carry credentials/);
    expect(error.message).not.toContain(SECRET);
  });

  it('names the TLS file it cannot read', async () => {
    const error = await configError({ ETCDCTL_CACERT: '/nonexistent/ca.pem' });
    expect(error.field).toBe('ETCDCTL_CACERT');
    expect(error.message).toMatch(/cannot read "\/nonexistent\/ca.pem" \(ENOENT\)/);
  });

  it('reads TLS files into the provider options', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'baton-etcd-config-'));
    await writeFile(join(dir, 'ca.pem'), 'CA');
    const options = await providerOptions(parse({ caFile: join(dir, 'ca.pem') }));
    expect(options.tls?.ca?.toString()).toBe('CA');
    expect(options.tls?.cert).toBeUndefined();
  });

  it('is what createLockProvider builds for BATON_BACKEND=etcd, and keeps credentials out of JSON', async () => {
    const provider = await createLockProvider({
      BATON_BACKEND: 'etcd',
      ETCD_ENDPOINTS: '127.0.0.1:1',
      ETCDCTL_USER: 'worker',
      ETCDCTL_PASSWORD: SECRET,
    });
    try {
      expect(provider).toBeInstanceOf(EtcdLockProvider);
      expect(provider.backend).toBe('etcd');
      expect(JSON.stringify(provider)).not.toContain(SECRET);
    } finally {
      await provider.close();
    }
  });

  it('is what createLockProvider builds from a config object with backend etcd', async () => {
    const provider = await createLockProvider({
      backend: 'etcd',
      endpoints: ['127.0.0.1:1'],
      lockDelayMs: '0',
    });
    await provider.close();
    expect(provider.backend).toBe('etcd');
  });
});
