/**
 * The HTTP server: Node's `http`, one {@link ConsulAgent}, the request log and the fault injector. Each request
 * is counted on arrival, read fully, held while paused, possibly failed by a scripted fault, routed, delayed
 * by the configured latency, held again while paused, then written.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { InvalidArgumentError, systemClock } from '@baton/core';
import { ConsulAgent } from './agent.js';
import { FaultInjector } from './faults.js';
import { msToNs } from './go-duration.js';
import { type ConsulRequest, type ConsulResponse, QueryParams, textResponse } from './http-util.js';
import { RequestLog } from './request-log.js';
import { requestPattern, route } from './router.js';
import type { ConsulTestEntry, ConsulTestServer, ConsulTestServerOptions } from './types.js';

/** Bodies beyond this are cut off: far above every Consul limit, it only protects the test process. */
const MAX_READ_BYTES = 16 * 1024 * 1024;
const DEFAULT_BLOCKING_WAIT_MS = 5 * 60_000;

function checkNumber(name: string, value: number | undefined, min: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new InvalidArgumentError(
      `consul test server: ${name} must be a number >= ${min}, got ${String(value)}`,
    );
  }
  return value;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_READ_BYTES) chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', () => resolve(Buffer.concat(chunks)));
    req.on('aborted', () => resolve(Buffer.concat(chunks)));
  });
}

function writeResponse(res: ServerResponse, response: ConsulResponse): void {
  const body = typeof response.body === 'string' ? Buffer.from(response.body, 'utf8') : response.body;
  res.statusCode = response.status;
  for (const [name, value] of Object.entries(response.headers)) res.setHeader(name, value);
  res.setHeader('Content-Length', body.length);
  res.end(body);
}

/**
 * Starts a Consul-compatible HTTP server for tests: sessions, KV, txn and blocking queries with Consul's
 * semantics and error bodies (see `shared/consul-api.md`), plus fault injection, request counters and a lock
 * history. Close it with {@link ConsulTestServer.close}.
 *
 * @example
 * ```ts
 * const server = await startConsulTestServer({ sessionTtlMinMs: 200 });
 * const consul = new Consul({ host: server.host, port: server.port });
 * ```
 */
export async function startConsulTestServer(
  options: ConsulTestServerOptions = {},
): Promise<ConsulTestServer> {
  const host = options.host ?? '127.0.0.1';
  const port = checkNumber('port', options.port, 0, 0);
  if (!Number.isInteger(port) || port > 65_535) {
    throw new InvalidArgumentError(`consul test server: port must be an integer in [0, 65535], got ${port}`);
  }
  const clock = options.clock ?? systemClock;
  const aclTokens = options.aclTokens;
  if (aclTokens?.some((t) => typeof t !== 'string' || t === '')) {
    throw new InvalidArgumentError('consul test server: aclTokens must be non-empty strings');
  }
  const ttlMultiplier = checkNumber('ttlMultiplier', options.ttlMultiplier, 0, 2);
  if (ttlMultiplier === 0) throw new InvalidArgumentError('consul test server: ttlMultiplier must be > 0');
  const maxBlockingWaitMs = checkNumber('maxBlockingWaitMs', options.maxBlockingWaitMs, 1, 10 * 60_000);

  const agent = new ConsulAgent({
    nodeName: options.nodeName ?? 'baton-test-node',
    datacenter: options.datacenter ?? 'dc1',
    clock,
    sessionTtlMinNs: msToNs(checkNumber('sessionTtlMinMs', options.sessionTtlMinMs, 0, 10_000)),
    ttlMultiplier,
    maxLockDelayNs: msToNs(checkNumber('maxLockDelayMs', options.maxLockDelayMs, 0, 60_000)),
    defaultBlockingWaitMs: DEFAULT_BLOCKING_WAIT_MS,
    maxBlockingWaitMs,
    aclTokens: aclTokens === undefined ? undefined : new Set(aclTokens),
  });
  const injector = new FaultInjector(clock);
  const requestLog = new RequestLog();
  const closing = new AbortController();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    const target = req.url ?? '/';
    const queryAt = target.indexOf('?');
    const rawPath = queryAt === -1 ? target : target.slice(0, queryAt);
    const rawQuery = queryAt === -1 ? '' : target.slice(queryAt + 1);
    let path = rawPath;
    let badEscape = false;
    try {
      path = decodeURIComponent(rawPath);
    } catch {
      badEscape = true;
    }
    requestLog.record({
      method,
      path,
      pattern: requestPattern(method, path),
      query: rawQuery,
      at: clock.monotonicNow(),
    });

    const clientGone = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) clientGone.abort();
    });
    const signal = AbortSignal.any([clientGone.signal, closing.signal]);
    const body = await readBody(req);
    const header = req.headers['content-length'];
    const contentLength = header === undefined ? undefined : Number(header);

    await injector.waitIfPaused(signal);
    if (signal.aborted) return;
    let response: ConsulResponse;
    if (badEscape) {
      response = textResponse(400, '400 Bad Request: invalid URL escape');
    } else {
      const failure = injector.take(method, path);
      if (failure && !failure.afterProcessing) {
        response = textResponse(failure.status, failure.body);
      } else {
        const consulRequest: ConsulRequest = {
          method,
          path,
          query: new QueryParams(rawQuery),
          headers: req.headers,
          body,
          contentLength,
          signal,
        };
        response = await route(agent, consulRequest);
        if (failure) response = textResponse(failure.status, failure.body);
      }
    }
    await injector.delay(signal);
    await injector.waitIfPaused(signal);
    if (signal.aborted || res.destroyed) return;
    writeResponse(res, response);
  };

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent || res.destroyed) return;
      writeResponse(res, textResponse(500, error instanceof Error ? error.message : String(error)));
    });
  };
  const server = options.tls
    ? createHttpsServer({ key: options.tls.key, cert: options.tls.cert }, listener)
    : createServer(listener);
  // Blocking queries hold requests for minutes; keep-alive sockets are reused by the npm client.
  server.requestTimeout = 0;
  server.keepAliveTimeout = 60_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.address.includes(':') ? `[${address.address}]` : address.address;
  let closed: Promise<void> | undefined;

  return {
    url: `${options.tls ? 'https' : 'http'}://${urlHost}:${address.port}`,
    host: address.address,
    port: address.port,
    faults: {
      failNext: (count, failOptions) => injector.failNext(count, failOptions),
      setLatency: (ms) => injector.setLatency(ms),
      pause: () => injector.pause(),
      resume: () => injector.resume(),
      failNodeCheck: () => agent.setNodeHealth(false),
      restoreNodeCheck: () => agent.setNodeHealth(true),
      leaderElection: (electionOptions) => {
        const durationMs = electionOptions?.durationMs ?? 1_000;
        if (!Number.isFinite(durationMs) || durationMs < 0) {
          throw new InvalidArgumentError(`leaderElection durationMs must be >= 0, got ${durationMs}`);
        }
        agent.startElection(durationMs);
      },
      clear: () => {
        injector.clear();
        agent.setNodeHealth(true);
        agent.endElection();
      },
    },
    requests: {
      total: () => requestLog.total(),
      count: (pattern) => requestLog.count(pattern),
      reset: () => requestLog.reset(),
      log: () => requestLog.log(),
    },
    history: () => agent.history.snapshot(),
    getEntry: (key): ConsulTestEntry | undefined => {
      const entry = agent.store.kvGet(key);
      if (!entry) return undefined;
      return {
        Key: entry.key,
        Value: entry.value === null ? null : entry.value.toString('utf8'),
        Flags: Number(entry.flags),
        ...(entry.session === '' ? {} : { Session: entry.session }),
        LockIndex: entry.lockIndex,
        CreateIndex: entry.createIndex,
        ModifyIndex: entry.modifyIndex,
      };
    },
    close: () => {
      closed ??= new Promise<void>((resolve) => {
        closing.abort();
        injector.clear();
        agent.shutdown();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
