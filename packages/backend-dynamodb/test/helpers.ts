import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type AttributeValue,
  CreateTableCommand,
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { type Clock, systemClock } from '@baton/core';
import { type DynaliteServer, startDynalite } from '@baton/test-servers/dynalite';
import { afterAll, afterEach, beforeAll } from 'vitest';
import {
  DynamoLockProvider,
  type DynamoLockProviderOptions,
  EPOCH_ITEM_KEY,
  LOCK_PREFIX,
} from '../src/index.js';

export const credentials = { accessKeyId: 'baton-test', secretAccessKey: 'baton-test' };

/** A clock whose wall time must never be read: proves expiry is decided on monotonic time alone. */
export const noWallClock: Clock = {
  ...systemClock,
  wallNow: () => {
    throw new Error('the DynamoDB backend read wall-clock time');
  },
};

export function uniqueTable(label: string): string {
  return `baton_${label}_${randomUUID().slice(0, 8)}`;
}

/** A raw SDK client straight to dynalite (bypasses any proxy), for inspecting and tampering with items. */
export function rawClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({ endpoint, region: 'local', credentials, maxAttempts: 1 });
}

export async function createTable(
  client: DynamoDBClient,
  table: string,
  partitionKey = 'key',
): Promise<void> {
  await client.send(
    new CreateTableCommand({
      TableName: table,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: partitionKey, AttributeType: 'S' }],
      KeySchema: [{ AttributeName: partitionKey, KeyType: 'HASH' }],
    }),
  );
}

export interface RawItem {
  owner: string | undefined;
  rvn: string | undefined;
  fence: number;
  /** Absent on items created in `counter` fence mode. */
  fenceMax: number | undefined;
  holdMs: number | undefined;
  value: string | undefined;
  /** Sessions of the places in the item's line of waiters, in ticket order. */
  waiters: string[];
  /** Place ids, in ticket order. */
  places: string[];
  /** The item's count of places (`waiting`). */
  waiting: number;
}

export async function readItem(client: DynamoDBClient, table: string, key: string): Promise<RawItem | null> {
  const { Item } = await client.send(
    new GetItemCommand({ TableName: table, Key: { key: { S: LOCK_PREFIX + key } }, ConsistentRead: true }),
  );
  if (!Item) return null;
  return {
    owner: Item.owner?.S,
    rvn: Item.rvn?.S,
    fence: Number(Item.fence?.N),
    fenceMax: Item.fenceMax?.N === undefined ? undefined : Number(Item.fenceMax.N),
    holdMs: Item.holdMs?.N === undefined ? undefined : Number(Item.holdMs.N),
    value: Item.value?.S,
    waiters: places(Item).map((w) => w.session),
    places: places(Item).map((w) => w.id),
    waiting: Number(Item.waiting?.N ?? 0),
  };
}

function places(
  item: Record<string, AttributeValue>,
): Array<{ id: string; ticket: number; session: string }> {
  return Object.keys(item)
    .filter((name) => name.startsWith('w:'))
    .map((name) => {
      const id = name.slice(2);
      return { id, ticket: Number(item[name]?.N), session: item[`wi:${id}`]?.M?.s?.S ?? '' };
    })
    .sort((a, b) => a.ticket - b.ticket);
}

/** Removes a place from a lock item's line behind its waiter's back (as a waiter that presumed it dead would). */
export async function removePlace(
  client: DynamoDBClient,
  table: string,
  key: string,
  id: string,
): Promise<void> {
  await client.send(
    new UpdateItemCommand({
      TableName: table,
      Key: { key: { S: LOCK_PREFIX + key } },
      UpdateExpression: 'ADD #n :less REMOVE #w, #wi',
      ExpressionAttributeNames: { '#n': 'waiting', '#w': `w:${id}`, '#wi': `wi:${id}` },
      ExpressionAttributeValues: { ':less': { N: '-1' } },
    }),
  );
}

/** The table-wide fence-epoch counter (`epoch` fence mode), or `undefined` when nothing created it yet. */
export async function readEpoch(client: DynamoDBClient, table: string): Promise<number | undefined> {
  const { Item } = await client.send(
    new GetItemCommand({ TableName: table, Key: { key: { S: EPOCH_ITEM_KEY } }, ConsistentRead: true }),
  );
  return Item?.epoch?.N === undefined ? undefined : Number(Item.epoch.N);
}

export async function deleteItem(client: DynamoDBClient, table: string, key: string): Promise<void> {
  await client.send(new DeleteItemCommand({ TableName: table, Key: { key: { S: LOCK_PREFIX + key } } }));
}

/** Sets a numeric attribute of a lock item directly (to fast-forward state such as a fence span). */
export async function setNumber(
  client: DynamoDBClient,
  table: string,
  key: string,
  attribute: string,
  value: number,
): Promise<void> {
  await client.send(
    new UpdateItemCommand({
      TableName: table,
      Key: { key: { S: LOCK_PREFIX + key } },
      UpdateExpression: 'SET #a = :v',
      ExpressionAttributeNames: { '#a': attribute },
      ExpressionAttributeValues: { ':v': { N: String(value) } },
    }),
  );
}

/** Counts the requests a client sends, per operation, with an SDK middleware. */
export function countRequests(client: DynamoDBClient): {
  counts: Map<string, number>;
  total(): number;
  reset(): void;
} {
  const counts = new Map<string, number>();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = (context.commandName ?? 'unknown').replace(/Command$/, '');
      counts.set(name, (counts.get(name) ?? 0) + 1);
      return next(args);
    },
    { step: 'initialize', name: `batonRequestCounter-${randomUUID()}` },
  );
  return {
    counts,
    total: () => [...counts.values()].reduce((a, b) => a + b, 0),
    reset: () => counts.clear(),
  };
}

/**
 * While `broken` is set, every request of `client` fails before it is sent, with the error Node gives for a
 * refused connection (no HTTP status, so it is a transport failure).
 */
export function breakableTransport(client: DynamoDBClient): { broken: boolean } {
  const state = { broken: false };
  client.middlewareStack.add(
    (next) => async (args) => {
      if (state.broken) {
        throw Object.assign(new Error('connect ECONNREFUSED (injected)'), {
          code: 'ECONNREFUSED',
          $metadata: {},
        });
      }
      return next(args);
    },
    { step: 'finalizeRequest', name: `batonBreakTransport-${randomUUID()}` },
  );
  return state;
}

/** What the proxy does to matching requests. */
export type FaultAction =
  /** Answer 400 ProvisionedThroughputExceededException without forwarding. */
  | 'throttle'
  /** Answer 500 InternalServerError without forwarding. */
  | 'server-error'
  /** Answer 400 AccessDeniedException without forwarding. */
  | 'access-denied'
  /** Forward, let DynamoDB apply it, then cut the connection before the answer reaches the client. */
  | 'apply-then-reset'
  /** Forward after a pause. */
  | 'delay'
  /** Forward at once (DynamoDB applies it), hold the answer back for a pause. */
  | 'delay-response';

interface FaultRule {
  operation: string | undefined;
  action: FaultAction;
  remaining: number;
  delayMs: number;
  /** `delay-response`: hold the answer until this settles too. */
  until: Promise<unknown> | undefined;
}

const fault = (type: string, message: string) =>
  JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${type}`, message });

/**
 * A tiny HTTP proxy in front of dynalite that can cut the transport or inject DynamoDB faults, so the SDK
 * sees real wire-level failures.
 */
export class FaultProxy {
  readonly endpoint: string;
  /** While true every request's connection is destroyed on arrival (server unreachable). */
  broken = false;
  /** Operations forwarded, in order (`UpdateItem`, `GetItem`, ...). */
  readonly forwarded: string[] = [];
  readonly #server: Server;
  readonly #target: URL;
  readonly #rules: FaultRule[] = [];

  private constructor(server: Server, target: string) {
    this.#server = server;
    this.#target = new URL(target);
    this.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  static async start(target: string): Promise<FaultProxy> {
    let proxy: FaultProxy | undefined;
    const server = createServer((req, res) => {
      proxy?.handle(req, res).catch(() => req.socket.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    proxy = new FaultProxy(server, target);
    return proxy;
  }

  /** Applies `action` to the next `count` requests of `operation` (any operation when omitted). */
  inject(
    action: FaultAction,
    options: { operation?: string; count?: number; delayMs?: number; until?: Promise<unknown> } = {},
  ): void {
    this.#rules.push({
      operation: options.operation,
      action,
      remaining: options.count ?? 1,
      delayMs: options.delayMs ?? 0,
      until: options.until,
    });
  }

  clearFaults(): void {
    this.#rules.length = 0;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (this.broken) {
      req.socket.destroy();
      return;
    }
    const operation = String(req.headers['x-amz-target'] ?? '').split('.')[1] ?? '';
    const rule = this.#rules.find(
      (r) => r.remaining > 0 && (r.operation === undefined || r.operation === operation),
    );
    if (rule) rule.remaining--;
    const reply = (status: number, body: string) => {
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' });
      res.end(body);
    };
    switch (rule?.action) {
      case 'throttle':
        return reply(400, fault('ProvisionedThroughputExceededException', 'injected throttling'));
      case 'server-error':
        return reply(500, fault('InternalServerError', 'injected server error'));
      case 'access-denied':
        return reply(400, fault('AccessDeniedException', 'User: test is not authorized (injected)'));
      case 'delay':
        await new Promise((resolve) => setTimeout(resolve, rule.delayMs));
        break;
      default:
        break;
    }
    this.forwarded.push(operation);
    const upstream = await new Promise<{ status: number; headers: Record<string, string>; body: Buffer }>(
      (resolve, reject) => {
        const out = request(
          {
            host: this.#target.hostname,
            port: this.#target.port,
            method: req.method,
            path: req.url,
            headers: req.headers,
          },
          async (response) => {
            const parts: Buffer[] = [];
            for await (const part of response) parts.push(part as Buffer);
            const headers: Record<string, string> = {};
            for (const [name, value] of Object.entries(response.headers)) {
              if (typeof value === 'string') headers[name] = value;
            }
            resolve({ status: response.statusCode ?? 500, headers, body: Buffer.concat(parts) });
          },
        );
        out.on('error', reject);
        out.end(Buffer.concat(chunks));
      },
    ).catch(() => undefined);
    if (rule?.action === 'delay-response') {
      await new Promise((resolve) => setTimeout(resolve, rule.delayMs));
      await rule.until?.catch(() => undefined);
    }
    if (!upstream || rule?.action === 'apply-then-reset') {
      req.socket.destroy();
      return;
    }
    res.writeHead(upstream.status, upstream.headers);
    res.end(upstream.body);
  }
}

/**
 * A clock whose wall time stands still (at 2026-01-01): `epoch` mode reads it only for the TTL attribute, so
 * no decision can depend on wall time passing.
 */
export const frozenWallClock: Clock = { ...systemClock, wallNow: () => Date.UTC(2026, 0, 1) };

/**
 * A provider against `endpoint` with test credentials and a clock that forbids wall-clock reads (`epoch`
 * mode: whose wall time stands still).
 */
export function makeProvider(
  endpoint: string,
  table: string,
  options: DynamoLockProviderOptions = {},
): DynamoLockProvider {
  const clock = options.fenceMode === 'epoch' ? frozenWallClock : noWallClock;
  // The stamps operators see (a grant's time, a waiter's) come from a clock of their own, never decided on.
  return new DynamoLockProvider({ endpoint, credentials, table, clock, stampClock: Date.now, ...options });
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` until it returns something other than undefined. */
export async function until<T>(
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(10);
  }
}

/** Per-file fixture: one in-process dynalite, one fresh table, a raw client, and cleanup of providers. */
export interface Fixture {
  readonly endpoint: string;
  readonly table: string;
  /**
   * The table of `epoch`-mode providers (which mark their table so that `counter`-mode providers refuse it):
   * `provider({ fenceMode: 'epoch' })` uses it unless given a table.
   */
  readonly epochTable: string;
  readonly raw: DynamoDBClient;
  /** A provider straight to dynalite, closed after the test. */
  provider(options?: DynamoLockProviderOptions): DynamoLockProvider;
  /** A proxy in front of dynalite, closed after the test. */
  proxy(): Promise<FaultProxy>;
  /** Something to close after the test. */
  defer(close: () => Promise<void> | void): void;
}

export function useDynalite(label: string): Fixture {
  let server: DynaliteServer | undefined;
  let raw: DynamoDBClient | undefined;
  const table = uniqueTable(label);
  const epochTable = `${table}_epoch`;
  let cleanups: Array<() => Promise<void> | void> = [];
  beforeAll(async () => {
    server = await startDynalite();
    raw = rawClient(server.endpoint);
    await createTable(raw, table);
    await createTable(raw, epochTable);
  });
  afterEach(async () => {
    const pending = cleanups.reverse();
    cleanups = [];
    for (const close of pending) await close();
  });
  afterAll(async () => {
    raw?.destroy();
    await server?.close();
  });
  const fixture: Fixture = {
    get endpoint() {
      if (!server) throw new Error('dynalite not started');
      return server.endpoint;
    },
    table,
    epochTable,
    get raw() {
      if (!raw) throw new Error('dynalite not started');
      return raw;
    },
    provider(options = {}) {
      const provider = makeProvider(
        fixture.endpoint,
        options.fenceMode === 'epoch' ? epochTable : table,
        options,
      );
      cleanups.push(() => provider.close());
      return provider;
    },
    async proxy() {
      const proxy = await FaultProxy.start(fixture.endpoint);
      cleanups.push(() => proxy.close());
      return proxy;
    },
    defer(close) {
      cleanups.push(close);
    },
  };
  return fixture;
}
