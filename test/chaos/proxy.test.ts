import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaultProxy } from './proxy.mjs';

// The chaos harness's network faults: each must do what the harness claims, or a "clean" run proves nothing.

let echo: Server;
let echoPort: number;

beforeAll(async () => {
  echo = createServer((socket) => {
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', () => resolve()));
  echoPort = (echo.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => echo.close(() => resolve()));
});

async function withProxy(fn: (proxy: FaultProxy, client: Socket) => Promise<void>): Promise<void> {
  const proxy = await new FaultProxy({ name: 'test', target: { host: '127.0.0.1', port: echoPort } }).start();
  const client = connect({ host: '127.0.0.1', port: proxy.port });
  client.on('error', () => {});
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  try {
    await fn(proxy, client);
  } finally {
    client.destroy();
    await proxy.close();
  }
}

/** Sends `text` and resolves with the echo and how long it took. */
function roundTrip(client: Socket, text: string, timeoutMs = 5_000): Promise<{ text: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    let received = '';
    const timer = setTimeout(() => {
      client.off('data', onData);
      reject(new Error(`no echo within ${timeoutMs} ms (got '${received}')`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      received += chunk.toString();
      if (received.length >= text.length) {
        clearTimeout(timer);
        client.off('data', onData);
        resolve({ text: received, ms: performance.now() - started });
      }
    };
    client.on('data', onData);
    client.write(text);
  });
}

function closedWith(client: Socket): Promise<string> {
  return new Promise((resolve) => {
    client.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    client.once('close', () => resolve('closed'));
  });
}

describe('fault proxy', () => {
  it('passes traffic through untouched', async () => {
    await withProxy(async (_proxy, client) => {
      expect((await roundTrip(client, 'hello')).text).toBe('hello');
    });
  });

  it('adds latency in each direction, keeping order', async () => {
    await withProxy(async (proxy, client) => {
      proxy.setLatency(150);
      const answer = await roundTrip(client, 'abc');
      expect(answer.text).toBe('abc');
      expect(answer.ms).toBeGreaterThanOrEqual(290);
      proxy.setLatency(0);
      expect((await roundTrip(client, 'd')).ms).toBeLessThan(150);
    });
  });

  it('blackholes both ways, then delivers what it held', async () => {
    await withProxy(async (proxy, client) => {
      proxy.blackhole();
      const pending = roundTrip(client, 'held', 5_000);
      const quiet = await Promise.race([pending.then(() => 'answered'), delay(400).then(() => 'silent')]);
      expect(quiet).toBe('silent');
      proxy.heal();
      expect((await pending).text).toBe('held');
    });
  });

  it('blackholes new connections too', async () => {
    const proxy = await new FaultProxy({
      name: 'test',
      target: { host: '127.0.0.1', port: echoPort },
    }).start();
    try {
      proxy.blackhole();
      const client = connect({ host: '127.0.0.1', port: proxy.port });
      client.on('error', () => {});
      await new Promise<void>((resolve) => client.once('connect', () => resolve()));
      await expect(roundTrip(client, 'x', 400)).rejects.toThrow(/no echo/);
      client.destroy();
    } finally {
      await proxy.close();
    }
  });

  it('ends a blackhole with a reset when told to', async () => {
    await withProxy(async (proxy, client) => {
      proxy.blackhole();
      const closed = closedWith(client);
      client.write('lost');
      await delay(50);
      proxy.heal({ reset: true });
      expect(await closed).toBe('ECONNRESET');
    });
  });

  it('loses the next answer: the request got through, the connection carrying the answer is reset', async () => {
    const received: string[] = [];
    const server = createServer((socket) => {
      socket.on('error', () => {});
      socket.on('data', (chunk) => {
        received.push(chunk.toString());
        socket.write(`ok ${chunk}`);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const proxy = await new FaultProxy({
      name: 'test',
      target: { host: '127.0.0.1', port: (server.address() as { port: number }).port },
    }).start();
    try {
      const client = connect({ host: '127.0.0.1', port: proxy.port });
      client.on('error', () => {});
      await new Promise<void>((resolve) => client.once('connect', () => resolve()));
      proxy.loseAnswers(1);
      const closed = closedWith(client);
      client.write('write-1');
      expect(await closed).toBe('ECONNRESET');
      expect(received).toEqual(['write-1']);
      const next = connect({ host: '127.0.0.1', port: proxy.port });
      next.on('error', () => {});
      await new Promise<void>((resolve) => next.once('connect', () => resolve()));
      expect((await roundTrip(next, 'write-2')).text).toBe('ok write-2');
      next.destroy();
    } finally {
      await proxy.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('resets every open connection, and accepts new ones', async () => {
    await withProxy(async (proxy, client) => {
      await roundTrip(client, 'one');
      const closed = closedWith(client);
      expect(proxy.resetAll()).toBe(1);
      expect(await closed).toBe('ECONNRESET');
      const next = connect({ host: '127.0.0.1', port: proxy.port });
      next.on('error', () => {});
      await new Promise<void>((resolve) => next.once('connect', () => resolve()));
      expect((await roundTrip(next, 'two')).text).toBe('two');
      next.destroy();
    });
  });
});

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
