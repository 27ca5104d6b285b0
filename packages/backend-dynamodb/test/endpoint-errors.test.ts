import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLockProvider, isBatonError, redact, secretFields } from '@baton/core';
import { type ConsulTestServer, startConsulTestServer } from '@baton/test-servers/consul-server';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { backend } from '../src/index.js';

// Issue 13: an endpoint that is not DynamoDB, and a region that cannot be one, each named in the error.
const SECRET_KEY = 'aws-secret-SENTINEL-0c9e7a';
const SESSION_TOKEN = 'aws-session-SENTINEL-44b1f2';

const CREDENTIALS = {
  AWS_ACCESS_KEY_ID: 'baton-test',
  AWS_SECRET_ACCESS_KEY: SECRET_KEY,
  AWS_SESSION_TOKEN: SESSION_TOKEN,
};

let html: Server;
let htmlUrl: string;
let consul: ConsulTestServer;

beforeAll(async () => {
  html = createServer((request, response) => {
    request.resume();
    const status = request.url === '/' ? 200 : 404;
    response
      .writeHead(status, { 'content-type': 'text/html' })
      .end('<html><body>Welcome to nginx!</body></html>');
  });
  await new Promise<void>((resolve) => html.listen(0, '127.0.0.1', resolve));
  htmlUrl = `http://127.0.0.1:${(html.address() as AddressInfo).port}`;
  consul = await startConsulTestServer();
  // The SDK reads credentials from process.env itself (stubbed once: the rows run concurrently).
  for (const [name, value] of Object.entries(CREDENTIALS)) vi.stubEnv(name, value);
});
afterAll(async () => {
  vi.unstubAllEnvs();
  await new Promise((resolve) => html?.close(resolve));
  await consul?.close();
});

async function attempt(env: Record<string, string>): Promise<unknown> {
  try {
    const provider = await createLockProvider({
      BATON_BACKEND: 'dynamodb',
      BATON_DYNAMODB_REQUEST_TIMEOUT: '2s',
      ...CREDENTIALS,
      ...env,
    });
    try {
      await provider.getHolder('preflight');
    } finally {
      await provider.close();
    }
  } catch (error) {
    return error;
  }
  return undefined;
}

const rows: Array<{ name: string; env: () => Record<string, string>; code: string; message: RegExp }> = [
  {
    name: 'an HTTP server answering HTML',
    env: () => ({ AWS_ENDPOINT_URL_DYNAMODB: htmlUrl }),
    code: 'UNAVAILABLE',
    message: /answered HTTP 200 with something that is not DynamoDB.*AWS_ENDPOINT_URL_DYNAMODB/s,
  },
  {
    name: 'another service (a Consul agent) answering 404',
    env: () => ({ AWS_ENDPOINT_URL_DYNAMODB: consul.url }),
    code: 'UNAVAILABLE',
    message: /answered HTTP \d+ with something that is not DynamoDB.*AWS_ENDPOINT_URL_DYNAMODB/s,
  },
  {
    name: 'an endpoint URL with credentials in it',
    env: () => ({ AWS_ENDPOINT_URL_DYNAMODB: htmlUrl.replace('://', `://u:${SECRET_KEY}@`) }),
    code: 'UNAVAILABLE',
    message: /not DynamoDB/,
  },
  {
    name: "AWS_REGION='us east!!'",
    env: () => ({ AWS_REGION: 'us east!!' }),
    code: 'CONFIG_INVALID',
    message: /AWS_REGION: expected an AWS region name/,
  },
  {
    name: 'AWS_REGION with a slash',
    env: () => ({ AWS_REGION: 'eu-west-1/evil' }),
    code: 'CONFIG_INVALID',
    message: /AWS_REGION/,
  },
];

describe.concurrent('DynamoDB endpoint and region errors', () => {
  it.each(rows)('$name', async ({ env, code, message }) => {
    const error = await attempt(env());
    expect(isBatonError(error) && error.code, String(error)).toBe(code);
    expect((error as Error).message).toMatch(message);
    for (const secret of [SECRET_KEY, SESSION_TOKEN]) expect((error as Error).message).not.toContain(secret);
  });

  it('declares its secrets: credentials in the endpoint, and the AWS credential variables', async () => {
    expect(secretFields(backend.fields).map((f) => f.docs.env)).toEqual(['AWS_ENDPOINT_URL_DYNAMODB']);
    expect(backend.secretEnv).toEqual(['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']);
    await attempt({ AWS_ENDPOINT_URL_DYNAMODB: htmlUrl });
    expect(redact(`echoed ${SECRET_KEY} and ${SESSION_TOKEN}`)).toBe('echoed [redacted] and [redacted]');
  });
});
