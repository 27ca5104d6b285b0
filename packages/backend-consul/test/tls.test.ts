import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLockProvider } from '@baton/core';
import { type ConsulTestServer, startConsulTestServer } from '@baton/test-servers/consul-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REAL_AGENT } from './harness.js';
import { rejectionOf } from './util.js';

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A throwaway CA and a server certificate for localhost / 127.0.0.1 signed by it. */
async function makeCertificates(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '1',
    '-subj',
    '/CN=baton test CA',
  );
  run('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  await writeFile(join(dir, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
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
    '1',
    '-extfile',
    'san.ext',
  );
  return { ca: join(dir, 'ca.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server.key') };
}

// https with a private CA, configured the way operators do: CONSUL_HTTP_ADDR + CONSUL_CACERT.
describe.skipIf(REAL_AGENT || !hasOpenssl())('TLS', () => {
  let dir: string;
  let files: { ca: string; cert: string; key: string };
  let server: ConsulTestServer;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'baton-consul-tls-'));
    files = await makeCertificates(dir);
    server = await startConsulTestServer({
      sessionTtlMinMs: 100,
      tls: { cert: await readFile(files.cert), key: await readFile(files.key) },
    });
  });
  afterAll(async () => {
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('talks https to an agent whose certificate is signed by CONSUL_CACERT (sessions, txn, KV)', async () => {
    expect(server.url).toMatch(/^https:/);
    const provider = await createLockProvider({
      BATON_BACKEND: 'consul',
      CONSUL_HTTP_ADDR: `localhost:${server.port}`,
      CONSUL_HTTP_SSL: 'true',
      CONSUL_CACERT: files.ca,
      BATON_SESSION_TTL: '1s',
      BATON_CONSUL_ALLOW_SHORT_TTL: 'true',
    });
    try {
      const session = await provider.openSession();
      server.requests.reset();
      const lease = await session.tryAcquire('tls/k', { value: 'over tls' });
      expect(server.requests.count('PUT /v1/txn')).toBe(1);
      expect((await provider.getHolder('tls/k'))?.value).toBe('over tls');
      expect(await lease!.release()).toBe(true);
    } finally {
      await provider.close();
    }
  });

  it('without the CA, the handshake failure names CONSUL_CACERT as the fix', async () => {
    const provider = await createLockProvider({
      BATON_BACKEND: 'consul',
      CONSUL_HTTP_ADDR: `https://localhost:${server.port}`,
      BATON_SESSION_TTL: '1s',
      BATON_CONSUL_ALLOW_SHORT_TTL: 'true',
    });
    try {
      const error = await rejectionOf(provider.openSession());
      expect(error).toMatchObject({ code: 'CONFIG_INVALID', field: 'caFile' });
      expect(error.message).toMatch(/CONSUL_CACERT/);
    } finally {
      await provider.close();
    }
  });
});
