// Child process that hosts one embedded server (dynalite or the Consul-compatible test server; or starts a real
// etcd or redis-server, which run in processes of their own) so that the
// process being measured does not also pay for the server's CPU on its own event loop. On a real deployment
// the server is another machine; here it is at least another process.
//
// Protocol (IPC): the host sends { type: 'ready', url } once listening. The parent sends
// { id, op: 'count', pattern: { source, flags } | string } / { id, op: 'total' } / { id, op: 'reset' } /
// { id, op: 'close' } and gets { id, value } or { id, error } back. Request counting is what the server
// offers (the Consul test server's `requests`); for dynalite the host counts requests per X-Amz-Target itself.

import { readFile } from 'node:fs/promises';
import { createServer, request as httpRequest } from 'node:http';
import { importWorkspace, UnavailableError } from './packages.mjs';

const [kind, optionsJson = '{}'] = process.argv.slice(2);
const options = JSON.parse(optionsJson);

let server;
let counter;

if (kind === 'dynalite') {
  const { startDynalite } = await importWorkspace('@baton/test-servers/dynalite', ['startDynalite']);
  const { countRequests, ...rest } = options;
  const inner = await startDynalite(rest);
  if (countRequests) {
    // A counting pass-through in front of dynalite: DynamoDB has no request log, and the renewal benchmark
    // needs requests per operation. Only used where requests are counted (it adds a local hop).
    const proxy = await countingProxy(new URL(inner.endpoint));
    server = {
      url: proxy.url,
      close: async () => {
        await proxy.close();
        await inner.close();
      },
    };
    counter = proxy.counter;
    counter.patterns = () => proxy.counter.byOp();
  } else {
    server = { url: inner.endpoint, close: () => inner.close() };
    const unsupported = () => {
      throw new Error('start the dynalite host with { countRequests: true } to count requests');
    };
    counter = { count: unsupported, total: unsupported, reset: unsupported };
  }
} else if (kind === 'consul') {
  const { startConsulTestServer } = await importWorkspace('@baton/test-servers/consul-server', [
    'startConsulTestServer',
  ]);
  const { countRequests, ...rest } = options;
  const inner = await startConsulTestServer(rest);
  // The server logs every request; where nobody counts, the log is cleared now and then so that long runs
  // (hundreds of thousands of requests) do not grow the host.
  const trim = countRequests ? undefined : setInterval(() => inner.requests.reset(), 5_000);
  server = {
    url: inner.url,
    close: () => {
      clearInterval(trim);
      return inner.close();
    },
  };
  counter = {
    count: (pattern) => inner.requests.count(pattern),
    total: () => inner.requests.total(),
    reset: () => inner.requests.reset(),
    patterns: () => {
      const out = {};
      for (const entry of inner.requests.log()) out[entry.pattern] = (out[entry.pattern] ?? 0) + 1;
      return out;
    },
  };
} else if (kind === 'etcd') {
  // A real etcd in its own process (Debian's etcd-server): requests are counted from its Prometheus
  // metrics (gRPC messages received per method), CPU from /proc.
  const { findEtcd, startEtcd, ETCD_INSTALL_HINT } = await importWorkspace('@baton/test-servers/etcd', [
    'findEtcd',
    'startEtcd',
    'ETCD_INSTALL_HINT',
  ]);
  if (!findEtcd()) throw new UnavailableError(`no etcd binary (${ETCD_INSTALL_HINT})`);
  const inner = await startEtcd();
  server = { url: inner.endpoint, close: () => inner.close() };
  let baseline = {};
  const received = async () => {
    const text = await (await fetch(`${inner.endpoint}/metrics`)).text();
    const out = {};
    for (const [, method, value] of text.matchAll(
      /^grpc_server_msg_received_total\{[^}]*grpc_method="([^"]+)"[^}]*\} (\S+)$/gm,
    )) {
      out[method] = (out[method] ?? 0) + Number(value);
    }
    return out;
  };
  const since = async () => {
    const now = await received();
    const out = {};
    for (const [method, n] of Object.entries(now)) {
      const delta = n - (baseline[method] ?? 0);
      if (delta > 0) out[method] = delta;
    }
    return out;
  };
  counter = {
    count: async (pattern) => (await since())[pattern] ?? 0,
    total: async () => Object.values(await since()).reduce((a, b) => a + b, 0),
    reset: async () => {
      baseline = await received();
    },
    patterns: since,
    cpuMs: async () => {
      const fields = (await readFile(`/proc/${inner.pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
      return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
    },
  };
} else if (kind === 'redis') {
  // A real redis-server in its own process (Debian's). Requests are counted with MONITOR (only when asked:
  // it slows the server), leaving out what scripts run inside the server and the counting connection's own;
  // CPU from /proc.
  const { findRedis, startRedis, REDIS_INSTALL_HINT } = await importWorkspace('@baton/test-servers/redis', [
    'findRedis',
    'startRedis',
    'REDIS_INSTALL_HINT',
  ]);
  if (!findRedis()) throw new UnavailableError(`no redis-server binary (${REDIS_INSTALL_HINT})`);
  const inner = await startRedis();
  const { Redis } = await import('ioredis');
  const admin = new Redis(inner.url);
  const monitor = options.countRequests ? await new Redis(inner.url).monitor() : undefined;
  let seen = {};
  const markers = new Map();
  monitor?.on('monitor', (_time, args, source) => {
    const name = String(args[0]).toUpperCase();
    if (name === 'ECHO' && markers.has(args[1])) {
      markers.get(args[1])();
      return;
    }
    if (source === 'lua' || name === 'INFO' || name === 'CONFIG') return;
    seen[name] = (seen[name] ?? 0) + 1;
  });
  /** Waits until MONITOR has shown everything sent before now. */
  const settle = async () => {
    const marker = `bench-${Math.random()}`;
    const shown = new Promise((resolve) => markers.set(marker, resolve));
    await admin.echo(marker);
    await shown;
    markers.delete(marker);
  };
  server = {
    url: inner.url,
    close: async () => {
      monitor?.disconnect();
      admin.disconnect();
      await inner.close();
    },
  };
  const unsupported = () => {
    throw new Error('start the redis host with { countRequests: true } to count requests');
  };
  counter = {
    count: monitor
      ? async (pattern) => {
          await settle();
          return seen[pattern] ?? 0;
        }
      : unsupported,
    total: monitor
      ? async () => {
          await settle();
          return Object.values(seen).reduce((a, b) => a + b, 0);
        }
      : unsupported,
    reset: monitor
      ? async () => {
          await settle();
          seen = {};
        }
      : unsupported,
    patterns: monitor
      ? async () => {
          await settle();
          return { ...seen };
        }
      : unsupported,
    cpuMs: async () => {
      const fields = (await readFile(`/proc/${inner.pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
      return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
    },
  };
} else {
  throw new Error(`unknown server kind ${kind}`);
}

process.on('message', async (msg) => {
  try {
    let value;
    if (msg.op === 'count') {
      const pattern =
        typeof msg.pattern === 'string' ? msg.pattern : new RegExp(msg.pattern.source, msg.pattern.flags);
      value = await counter.count(pattern);
    } else if (msg.op === 'total') value = await counter.total();
    else if (msg.op === 'reset') value = await counter.reset();
    else if (msg.op === 'patterns') value = await counter.patterns();
    else if (msg.op === 'cpu')
      value = counter.cpuMs
        ? await counter.cpuMs()
        : (process.cpuUsage().user + process.cpuUsage().system) / 1000;
    else if (msg.op === 'close') {
      await server.close();
      process.send({ id: msg.id, value: true }, () => process.exit(0));
      return;
    } else throw new Error(`unknown op ${msg.op}`);
    process.send({ id: msg.id, value: value ?? null });
  } catch (error) {
    process.send({ id: msg.id, error: String(error?.stack ?? error) });
  }
});
process.on('disconnect', () => process.exit(0));
process.send({ type: 'ready', url: server.url });

/** HTTP pass-through that counts requests by DynamoDB operation (`X-Amz-Target: DynamoDB_20120810.<Op>`). */
async function countingProxy(target) {
  const seen = [];
  const agent = new (await import('node:http')).Agent({ keepAlive: true, maxSockets: 256 });
  const proxy = createServer((req, res) => {
    const op = String(req.headers['x-amz-target'] ?? '').split('.')[1] ?? req.method;
    seen.push(op);
    const upstream = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  proxy.keepAliveTimeout = 60_000;
  await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const { port } = proxy.address();
  return {
    url: `http://127.0.0.1:${port}`,
    counter: {
      count: (pattern) =>
        seen.filter((op) => (typeof pattern === 'string' ? op === pattern : pattern.test(op))).length,
      total: () => seen.length,
      byOp: () => {
        const out = {};
        for (const op of seen) out[op] = (out[op] ?? 0) + 1;
        return out;
      },
      reset: () => {
        seen.length = 0;
      },
    },
    close: async () => {
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
      agent.destroy();
    },
  };
}
