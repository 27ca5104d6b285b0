#!/usr/bin/env node
/**
 * `baton-consul-test-server`: runs the Consul-compatible test server until SIGTERM / SIGINT, for tests that
 * start it in another process (chaos runs, examples, a shell).
 *
 * ```
 * baton-consul-test-server [--host 127.0.0.1] [--port 8500] [--ttl-min 200ms] [--ttl-multiplier 2]
 *                          [--acl-token TOKEN]... [--node-name NAME] [--datacenter dc1]
 *                          [--max-lock-delay 60s] [--max-wait 10m] [--tls-cert FILE --tls-key FILE]
 * ```
 * Durations are Go durations (`200ms`, `10s`) or plain milliseconds.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { nsToMs, parseGoDuration } from './go-duration.js';
import { startConsulTestServer } from './server.js';
import type { ConsulTestServerOptions } from './types.js';

const USAGE = `usage: baton-consul-test-server [options]

  --host HOST             interface to listen on (default 127.0.0.1)
  --port PORT             port to listen on, 0 for a free one (default 8500)
  --ttl-min DURATION      smallest accepted session TTL (default 10s, as Consul)
  --ttl-multiplier N      sessions expire after TTL x N without renewal (default 2)
  --acl-token TOKEN       enable ACLs with this management token (repeatable)
  --node-name NAME        the agent's node name (default baton-test-node)
  --datacenter DC         datacenter name (default dc1)
  --max-lock-delay DUR    cap applied to session lock-delays (default 60s)
  --max-wait DURATION     cap for blocking-query ?wait (default 10m)
  --tls-cert FILE         serve HTTPS with this PEM certificate (needs --tls-key)
  --tls-key FILE          PEM private key for --tls-cert
  -h, --help              show this help
`;

class UsageError extends Error {}

function durationMs(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  try {
    const ns = parseGoDuration(text);
    if (ns < 0n) throw new Error('negative');
    return nsToMs(ns);
  } catch {
    throw new UsageError(`--${flag}: expected a duration such as 200ms or 10s, got '${text}'`);
  }
}

function numberFlag(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value))
    throw new UsageError(`--${flag}: expected a number, got '${text}'`);
  return value;
}

/** Parses the command line into server options; `undefined` when help was asked for. */
function parseCliArgs(argv: readonly string[]): ConsulTestServerOptions | undefined {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      'ttl-min': { type: 'string' },
      'ttl-multiplier': { type: 'string' },
      'acl-token': { type: 'string', multiple: true },
      'node-name': { type: 'string' },
      datacenter: { type: 'string' },
      'max-lock-delay': { type: 'string' },
      'max-wait': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return undefined;
  const options: ConsulTestServerOptions = { port: numberFlag('port', values.port) ?? 8500 };
  if (values.host !== undefined) options.host = values.host;
  const ttlMin = durationMs('ttl-min', values['ttl-min']);
  if (ttlMin !== undefined) options.sessionTtlMinMs = ttlMin;
  const multiplier = numberFlag('ttl-multiplier', values['ttl-multiplier']);
  if (multiplier !== undefined) options.ttlMultiplier = multiplier;
  if (values['acl-token'] !== undefined) options.aclTokens = values['acl-token'];
  if (values['node-name'] !== undefined) options.nodeName = values['node-name'];
  if (values.datacenter !== undefined) options.datacenter = values.datacenter;
  const maxLockDelay = durationMs('max-lock-delay', values['max-lock-delay']);
  if (maxLockDelay !== undefined) options.maxLockDelayMs = maxLockDelay;
  const maxWait = durationMs('max-wait', values['max-wait']);
  if (maxWait !== undefined) options.maxBlockingWaitMs = maxWait;
  const cert = values['tls-cert'];
  const key = values['tls-key'];
  if ((cert === undefined) !== (key === undefined))
    throw new UsageError('--tls-cert and --tls-key go together');
  if (cert !== undefined && key !== undefined) {
    try {
      options.tls = { cert: readFileSync(cert), key: readFileSync(key) };
    } catch (error) {
      throw new UsageError(`cannot read TLS files: ${(error as Error).message}`);
    }
  }
  return options;
}

async function main(): Promise<void> {
  let options: ConsulTestServerOptions | undefined;
  try {
    options = parseCliArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  if (options === undefined) {
    process.stdout.write(USAGE);
    return;
  }
  const server = await startConsulTestServer(options);
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`consul test server stopping (${signal})\n`);
    server.close().then(
      () => {
        process.exitCode = 0;
      },
      (error: unknown) => {
        process.stderr.write(`consul test server: close failed: ${String(error)}\n`);
        process.exitCode = 1;
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  // Announce only once the signal handlers are in place: a supervisor may signal as soon as it reads this.
  process.stdout.write(`consul test server listening on ${server.url}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`consul test server: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
