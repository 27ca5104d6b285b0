// A fault-injecting TCP proxy: each chaos worker reaches the lock server and PostgreSQL through its own
// proxies, so the harness can slow down, cut or silence one worker's network without touching the others.

import { connect, createServer } from 'node:net';

const HIGH_WATER = 1 << 20;

/** One direction of a proxied connection: a queue of chunks, each released at its due time. */
class Pipe {
  /** @type {{ chunk: Buffer, at: number }[]} */
  queue = [];
  queued = 0;
  lastAt = 0;
  ended = false;
  timer = undefined;

  constructor(from, to, proxy, answers) {
    /** Upstream to client: the direction whose chunks are answers. */
    this.answers = answers;
    this.from = from;
    this.to = to;
    this.proxy = proxy;
    from.on('data', (chunk) => {
      if (this.answers && proxy.takeLostAnswer()) {
        proxy.dropConnectionOf(from);
        return;
      }
      const at = Math.max(performance.now() + proxy.latencyMs, this.lastAt);
      this.lastAt = at;
      this.queue.push({ chunk, at });
      this.queued += chunk.length;
      if (this.queued > HIGH_WATER) from.pause();
      this.pump();
    });
    from.on('end', () => {
      this.ended = true;
      this.pump();
    });
  }

  pump() {
    if (this.timer !== undefined || this.proxy.blackholed || this.to.destroyed) return;
    const now = performance.now();
    while (this.queue.length > 0 && this.queue[0].at <= now) {
      const { chunk } = this.queue.shift();
      this.queued -= chunk.length;
      this.to.write(chunk);
    }
    if (this.queue.length > 0) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, this.queue[0].at - now);
      return;
    }
    if (this.from.isPaused()) this.from.resume();
    if (this.ended) this.to.end();
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue = [];
  }
}

/**
 * A TCP proxy with faults: added latency (every chunk is held that long, order kept), connection resets
 * (RST to both ends), and a blackhole (nothing flows either way, new connections are accepted and hang,
 * like a partition TCP has not noticed yet), healed either by delivering what was held or by resetting.
 */
export class FaultProxy {
  /** Latency added to every chunk, ms. */
  latencyMs = 0;
  blackholed = false;
  /** Counters since start. */
  stats = { connections: 0, resets: 0, bytes: 0, lostAnswers: 0 };
  #server;
  #host;
  #port;
  #target;
  /** @type {Set<{ client: import('node:net').Socket, upstream: import('node:net').Socket, pipes: Pipe[] }>} */
  #connections = new Set();
  #lostAnswers = 0;
  #gated = false;
  #refusing = false;
  /** Clients accepted while gated, not yet connected upstream (paused: nothing they send is read). */
  #waiting = [];

  /**
   * @param {{ name: string, target: { host: string, port: number }, host?: string }} options
   */
  constructor(options) {
    this.name = options.name;
    this.#target = options.target;
    this.#host = options.host ?? '127.0.0.1';
  }

  /** Port the proxy listens on (after {@link start}). */
  get port() {
    return this.#port;
  }

  get host() {
    return this.#host;
  }

  /** Open connections. */
  get connections() {
    return this.#connections.size;
  }

  /** Starts listening on a free port. */
  async start() {
    this.#server = createServer({ noDelay: true }, (client) => this.#accept(client));
    await new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(0, this.#host, () => resolve());
    });
    this.#port = this.#server.address().port;
    return this;
  }

  #accept(client) {
    if (this.#refusing) {
      client.on('error', () => {});
      client.resetAndDestroy();
      return;
    }
    if (this.#gated) {
      client.on('error', () => {});
      this.#waiting.push(client);
      return;
    }
    this.stats.connections++;
    const upstream = connect({ host: this.#target.host, port: this.#target.port, noDelay: true });
    const connection = { client, upstream, pipes: [] };
    connection.pipes.push(new Pipe(client, upstream, this, false), new Pipe(upstream, client, this, true));
    for (const socket of [client, upstream]) {
      socket.on('data', (chunk) => {
        this.stats.bytes += chunk.length;
      });
      socket.on('error', () => this.#drop(connection, false));
      socket.on('close', () => this.#drop(connection, false));
    }
    this.#connections.add(connection);
  }

  #drop(connection, reset) {
    if (!this.#connections.delete(connection)) return;
    for (const pipe of connection.pipes) pipe.stop();
    for (const socket of [connection.client, connection.upstream]) {
      if (socket.destroyed) continue;
      if (reset && typeof socket.resetAndDestroy === 'function' && socket.readyState === 'open') {
        socket.resetAndDestroy();
      } else {
        socket.destroy();
      }
    }
  }

  /** Adds `ms` of latency to every chunk from now on (0 removes it). */
  setLatency(ms) {
    this.latencyMs = Math.max(0, ms);
  }

  /**
   * The next `count` answers (chunks from the server) are lost: the server did the work, but the connection
   * that would have carried the answer is reset instead.
   */
  loseAnswers(count) {
    this.#lostAnswers += count;
  }

  /** @internal */
  takeLostAnswer() {
    if (this.#lostAnswers <= 0) return false;
    this.#lostAnswers--;
    this.stats.lostAnswers++;
    return true;
  }

  /** @internal Resets the connection `socket` belongs to. */
  dropConnectionOf(socket) {
    for (const connection of this.#connections) {
      if (connection.client === socket || connection.upstream === socket) this.#drop(connection, true);
    }
  }

  /** Resets every open connection (both ends get a RST); new connections work. */
  resetAll() {
    const open = [...this.#connections];
    for (const connection of open) this.#drop(connection, true);
    this.stats.resets += open.length;
    return open.length;
  }

  /** Stops all traffic, both ways, on every connection (new ones too) until {@link heal}. */
  blackhole() {
    this.blackholed = true;
  }

  /**
   * Ends a blackhole and removes latency. `reset: true` resets the connections that were silenced (as a
   * stateful firewall that lost their state would); otherwise what was held is delivered.
   */
  heal(options = {}) {
    const wasBlackholed = this.blackholed;
    this.blackholed = false;
    this.latencyMs = 0;
    this.#lostAnswers = 0;
    if (wasBlackholed && options.reset) {
      this.resetAll();
      return;
    }
    for (const connection of this.#connections) for (const pipe of connection.pipes) pipe.pump();
  }

  /**
   * Holds new connections (accepted, not yet connected upstream, nothing read from them) until
   * {@link ungate}: while a restarted lock server's recorder attaches, no request reaches it unrecorded.
   */
  gate() {
    this.#gated = true;
  }

  /**
   * While `on`, new connections are reset at once, as by a server that is down (connection refused);
   * open ones are left alone.
   */
  refuse(on) {
    this.#refusing = on;
  }

  /** Connects the connections held by {@link gate} upstream, in arrival order. */
  ungate() {
    this.#gated = false;
    for (const client of this.#waiting.splice(0)) if (!client.destroyed) this.#accept(client);
  }

  /** Stops listening and drops every connection. */
  async close() {
    for (const client of this.#waiting.splice(0)) client.destroy();
    for (const connection of [...this.#connections]) this.#drop(connection, false);
    if (!this.#server) return;
    await new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
