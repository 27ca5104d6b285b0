import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLockProvider } from '@baton/core';
import { type RedisServer, startRedis } from '@baton/test-servers/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveRedis } from './harness.js';

function haveOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    console.warn(
      'SKIPPED @baton/backend-redis TLS tests: no openssl to make test certificates. Fix: apt-get install openssl.',
    );
    return false;
  }
}

/** A throw-away CA and a server certificate for 127.0.0.1 signed by it. */
async function makeCertificates(dir: string): Promise<{ caFile: string; certFile: string; keyFile: string }> {
  const path = (name: string) => join(dir, name);
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=baton-test-ca',
  );
  run(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'server.key',
    '-out',
    'server.csr',
    '-subj',
    '/CN=127.0.0.1',
  );
  await writeFile(path('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  run(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.pem',
    '-days',
    '2',
    '-extfile',
    'san.ext',
  );
  return { caFile: path('ca.pem'), certFile: path('server.pem'), keyFile: path('server.key') };
}

describe.skipIf(!haveRedis || !haveOpenssl())('redis over TLS (rediss://)', () => {
  let server: RedisServer;
  let dir: string;
  let caFile: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'baton-redis-tls-'));
    const files = await makeCertificates(dir);
    caFile = files.caFile;
    server = await startRedis({ tls: files });
  });
  afterAll(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('connects with the CA in BATON_REDIS_CA_FILE', async () => {
    const provider = await createLockProvider({
      BATON_BACKEND: 'redis',
      REDIS_URL: server.tlsUrl ?? '',
      BATON_REDIS_CA_FILE: caFile,
    });
    try {
      const session = await provider.openSession();
      const lease = await session.tryAcquire('task/1');
      expect(lease?.fence).toBeGreaterThan(0);
      await session.destroy();
    } finally {
      await provider.close();
    }
  });

  it('refuses a server its trusted CAs did not sign: UNAVAILABLE naming REDIS_URL', async () => {
    const provider = await createLockProvider({
      BATON_BACKEND: 'redis',
      REDIS_URL: server.tlsUrl ?? '',
      BATON_REDIS_TIMEOUT: '1s',
    });
    try {
      const error = await provider.openSession().then(
        () => undefined,
        (e: { code?: string; message: string }) => e,
      );
      expect(error?.code).toBe('UNAVAILABLE');
      expect(error?.message).toMatch(/REDIS_URL/);
      expect(error?.message).toMatch(/certificate/);
    } finally {
      await provider.close();
    }
  });
});
