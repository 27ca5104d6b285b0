import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));

/** A port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** Runs an ES module script with this package's built code, as a user's script would (`npm test` builds first). */
function runScript(source: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--no-warnings', '--input-type=module', '-e', source],
      {
        cwd: PACKAGE_DIR,
        timeout: 60_000,
        env: { ...process.env, AWS_ACCESS_KEY_ID: 'bare', AWS_SECRET_ACCESS_KEY: 'bare' },
      },
      (_error, stdout, stderr) => resolve({ code: child.exitCode, stdout, stderr }),
    );
  });
}

describe('a script whose only work is a call being retried is not cut short', () => {
  it('openSession and ensureTable against an unreachable endpoint reject with UNAVAILABLE; the process does not exit mid-retry', async () => {
    const endpoint = `http://127.0.0.1:${await closedPort()}`;
    const result = await runScript(
      `
      import { DynamoLockProvider } from '@baton/backend-dynamodb';
      const provider = new DynamoLockProvider({ endpoint, region: 'us-east-1', table: 'bare', ttlMs: 1500 });
      for (const [name, call] of [['openSession', () => provider.openSession()], ['ensureTable', () => provider.ensureTable({ timeoutMs: 1500 })]]) {
        try {
          await call();
          console.log(name, 'resolved');
        } catch (error) {
          console.log(name, 'rejected', error.code);
          if (name === 'openSession') console.error(error.message);
        }
      }
      await provider.close();
    `.replace('{ endpoint,', `{ endpoint: ${JSON.stringify(endpoint)},`),
    );
    expect(result.stderr).toContain('Fix: check that DynamoDB is reachable at the configured endpoint');
    expect(result.stdout.trim().split('\n')).toEqual([
      'openSession rejected UNAVAILABLE',
      expect.stringMatching(/^ensureTable rejected (UNAVAILABLE|TIMEOUT)$/),
    ]);
    expect(result.code).toBe(0);
  }, 90_000);
});
