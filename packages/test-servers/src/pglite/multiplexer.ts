import { connect, createServer, type Server, type Socket } from 'node:net';
import {
  CANCEL_REQUEST,
  FrameReader,
  fatalMessage,
  GSSENC_REQUEST,
  notificationChannel,
  PROTOCOL_3_0,
  parseMessageParts,
  queryMessage,
  queryText,
  SSL_REQUEST,
  SYNC_MESSAGE,
  startupMessage,
  unnamedParseMessage,
} from './frames.js';

/** One client connection of the multiplexer. */
interface Client {
  readonly socket: Socket;
  readonly reader: FrameReader;
  phase: 'startup' | 'ready';
  /** Whole messages received while another client owned the session. */
  queue: Buffer[];
  /** Sent Terminate, or its socket is gone: finish its session work, then drop it. */
  leaving: boolean;
  /** Transaction status from this client's latest ReadyForQuery (`I`, `T` or `E`). */
  txStatus: string;
  /** Channels this client LISTENs on. */
  channels: Set<string>;
}

/**
 * Lets many `pg` connections share PGlite's single backend session safely.
 *
 * PGlite is one PostgreSQL backend. `PGLiteSocketServer` (0.2.x) accepts one connection by default; with
 * `maxConnections > 1` it interleaves the connections *message by message*, so the Parse/Bind/Execute/Sync of
 * two clients can mix (a large Bind that arrives in several TCP chunks lets another client's Parse replace
 * the unnamed statement in between: "bind message supplies 1 parameters, but prepared statement requires 2").
 *
 * This proxy keeps one upstream connection to the socket server and hands the session to one client at a
 * time, for a whole protocol round trip (everything up to the ReadyForQuery that answers its Sync or Query),
 * and for a whole transaction while the session reports one open. Other clients queue meanwhile. A client
 * that disconnects while it owns the session is cleaned up (Sync, then ROLLBACK if a transaction is open).
 *
 * What stays shared, as on any single-session pooler: session settings (`SET`) and session advisory locks.
 * Named prepared statements are shared too, but made to look private: a client that prepares a name the
 * session already has with the same text gets its Parse turned into one of the unnamed statement (so it
 * still sees ParseComplete, and its Bind finds the shared statement). LISTEN is routed: a notification goes
 * to the clients that listen on its channel, not to whoever owns the session when it arrives, and a client's
 * UNLISTEN does not stop the session listening while another client still listens. Startup parameters of
 * clients (user, database, application_name) are accepted and ignored. Only one transaction runs at a time, so code that holds a transaction open while it
 * waits for another connection of the same database deadlocks here (it would only wait on a real server).
 */
export class PgWireMultiplexer {
  readonly #upstreamHost: string;
  readonly #upstreamPort: number;
  #upstream: Socket | undefined;
  #startupResponse: Buffer = Buffer.alloc(0);
  #server: Server | undefined;
  #host = '127.0.0.1';
  #port = 0;
  readonly #clients = new Set<Client>();
  readonly #waiting: Client[] = [];
  #owner: Client | undefined;
  /** Sync/Query messages sent upstream whose ReadyForQuery has not arrived yet. */
  #outstanding = 0;
  #broken: Error | undefined;
  /** Named statements the upstream session has: name → Parse body (query text and parameter types). */
  readonly #prepared = new Map<string, Buffer>();

  constructor(upstream: { host: string; port: number }) {
    this.#upstreamHost = upstream.host;
    this.#upstreamPort = upstream.port;
  }

  /** Port the multiplexer listens on (after {@link start}). */
  get port(): number {
    return this.#port;
  }

  get host(): string {
    return this.#host;
  }

  /** Number of client connections currently open. */
  get connections(): number {
    return this.#clients.size;
  }

  /** Opens the upstream session and starts listening (`port` 0 picks a free one). */
  async start(options: { host?: string; port?: number } = {}): Promise<void> {
    await this.#openUpstream();
    this.#host = options.host ?? '127.0.0.1';
    await this.#listen(options.port ?? 0);
  }

  /**
   * Simulates the database going away: stops accepting connections (new ones are refused) and drops every
   * client connection. Data and the upstream session stay. {@link resume} listens again on the same port.
   */
  async suspend(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : undefined;
    this.dropConnections();
    await closed;
  }

  /** Accepts connections again on the same port after {@link suspend}. */
  async resume(): Promise<void> {
    if (this.#server) return;
    await this.#listen(this.#port);
  }

  /** Drops every client connection (as a server restart would) and keeps listening. */
  dropConnections(): void {
    for (const client of [...this.#clients]) client.socket.destroy();
  }

  /** Stops listening, drops every client and closes the upstream connection. */
  async close(): Promise<void> {
    await this.suspend();
    const upstream = this.#upstream;
    this.#upstream = undefined;
    this.#broken ??= new Error('multiplexer closed');
    if (upstream && !upstream.destroyed) {
      await new Promise<void>((resolve) => {
        upstream.once('close', () => resolve());
        upstream.end(Buffer.from([0x58, 0, 0, 0, 4]));
        setTimeout(() => upstream.destroy(), 1_000).unref();
      });
    }
  }

  async #listen(port: number): Promise<void> {
    const server = createServer((socket) => this.#accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.#host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('expected a TCP address');
    this.#port = address.port;
    this.#server = server;
  }

  async #openUpstream(): Promise<void> {
    const socket = connect({ host: this.#upstreamHost, port: this.#upstreamPort });
    socket.setNoDelay(true);
    const reader = new FrameReader();
    const frames: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      const fail = (error: Error) => {
        socket.destroy();
        reject(error);
      };
      const onData = (chunk: Buffer) => {
        reader.push(chunk);
        for (let frame = reader.nextTyped(); frame; frame = reader.nextTyped()) {
          frames.push(frame);
          const type = String.fromCharCode(frame[0]!);
          if (type === 'E') return fail(new Error(`PGlite refused the startup: ${frame.toString('utf8')}`));
          if (type === 'Z') {
            socket.off('data', onData);
            socket.off('error', fail);
            resolve();
            return;
          }
        }
      };
      socket.on('data', onData);
      socket.once('error', fail);
      socket.once('connect', () => socket.write(startupMessage({ user: 'postgres', database: 'postgres' })));
    });
    this.#startupResponse = Buffer.concat(frames);
    this.#upstream = socket;
    socket.on('data', (chunk: Buffer) => this.#onUpstreamData(reader, chunk));
    socket.on('error', (error) => this.#onUpstreamGone(error));
    socket.on('close', () => this.#onUpstreamGone(new Error('PGlite connection closed')));
  }

  #accept(socket: Socket): void {
    if (this.#broken) {
      socket.end(fatalMessage('57P01', 'terminating connection: the embedded database is closed'));
      return;
    }
    socket.setNoDelay(true);
    const client: Client = {
      socket,
      reader: new FrameReader(),
      phase: 'startup',
      queue: [],
      leaving: false,
      txStatus: 'I',
      channels: new Set(),
    };
    this.#clients.add(client);
    socket.on('data', (chunk: Buffer) => this.#onClientData(client, chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.#onClientGone(client));
  }

  #onClientData(client: Client, chunk: Buffer): void {
    if (client.leaving) return;
    client.reader.push(chunk);
    try {
      if (client.phase === 'startup') this.#readStartup(client);
      if (client.phase === 'ready') {
        for (let frame = client.reader.nextTyped(); frame; frame = client.reader.nextTyped()) {
          if (frame[0] === 0x58 /* X: Terminate */) {
            client.leaving = true;
            break;
          }
          client.queue.push(frame);
        }
      }
    } catch {
      client.socket.destroy();
      return;
    }
    this.#schedule(client);
  }

  #readStartup(client: Client): void {
    for (let packet = client.reader.nextUntyped(); packet; packet = client.reader.nextUntyped()) {
      const code = packet.readInt32BE(4);
      if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
        client.socket.write('N');
      } else if (code === PROTOCOL_3_0) {
        client.socket.write(this.#startupResponse);
        client.phase = 'ready';
        return;
      } else if (code === CANCEL_REQUEST) {
        client.socket.end();
        return;
      } else {
        client.socket.end(
          fatalMessage('0A000', `unsupported frontend protocol ${code >> 16}.${code & 0xffff}`),
        );
        return;
      }
    }
  }

  #schedule(client: Client): void {
    if (this.#owner === client) {
      this.#flush(client);
      return;
    }
    if (client.leaving) {
      // Not the owner, so it has no transaction open and nothing in flight.
      if (!client.socket.destroyed) client.socket.end();
      return;
    }
    if (client.queue.length > 0 && !this.#waiting.includes(client)) this.#waiting.push(client);
    this.#pump();
  }

  #pump(): void {
    while (!this.#owner && this.#waiting.length > 0) {
      const next = this.#waiting.shift()!;
      if (!this.#clients.has(next) || next.queue.length === 0) continue;
      this.#owner = next;
      this.#flush(next);
    }
  }

  /** Sends the owner's queued messages upstream. */
  #flush(client: Client): void {
    const upstream = this.#upstream;
    if (!upstream || this.#broken) {
      client.socket.destroy();
      return;
    }
    if (client.queue.length > 0) {
      const frames = client.queue.map((frame) => this.#rewrite(client, frame));
      for (const frame of frames) {
        // Each Sync, simple Query and FunctionCall is answered by exactly one ReadyForQuery.
        if (frame[0] === 0x53 || frame[0] === 0x51 || frame[0] === 0x46) this.#outstanding++;
      }
      upstream.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames));
      client.queue = [];
    }
    if (client.leaving && this.#outstanding === 0) this.#finishLeaving(client);
  }

  /** Makes shared named statements and LISTEN look private to each client (see the class comment). */
  #rewrite(client: Client, frame: Buffer): Buffer {
    if (frame[0] === 0x50 /* P: Parse */) {
      const { name, body } = parseMessageParts(frame);
      if (name === '') return frame;
      const known = this.#prepared.get(name);
      if (known?.equals(body)) return unnamedParseMessage(body);
      if (!known) this.#prepared.set(name, Buffer.from(body));
      return frame;
    }
    if (frame[0] === 0x51 /* Q: Query */) {
      const match = /^\s*(UN)?LISTEN\s+("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)\s*;?\s*$/i.exec(
        queryText(frame),
      );
      if (!match) return frame;
      const channel = match[2]!.startsWith('"')
        ? match[2]!.slice(1, -1).replaceAll('""', '"')
        : match[2]!.toLowerCase();
      if (!match[1]) {
        client.channels.add(channel);
        return frame;
      }
      client.channels.delete(channel);
      const others = [...this.#clients].some((other) => other.channels.has(channel));
      return others ? queryMessage(`LISTEN ${match[2]}`) : frame;
    }
    return frame;
  }

  /** Hands a notification to the clients that listen on its channel. */
  #notify(frame: Buffer): void {
    const channel = notificationChannel(frame);
    for (const client of this.#clients) {
      if (client.channels.has(channel) && !client.leaving && !client.socket.destroyed)
        client.socket.write(frame);
    }
  }

  #onUpstreamData(reader: FrameReader, chunk: Buffer): void {
    reader.push(chunk);
    const forward: Buffer[] = [];
    for (let frame = reader.nextTyped(); frame; frame = reader.nextTyped()) {
      if (frame[0] === 0x41 /* A: NotificationResponse */) {
        this.#notify(frame);
        continue;
      }
      const owner = this.#owner;
      if (!owner) continue; // asynchronous notices with nobody to tell
      if (!owner.leaving) forward.push(frame);
      if (frame[0] !== 0x5a /* Z: ReadyForQuery */) continue;
      this.#outstanding--;
      owner.txStatus = String.fromCharCode(frame[5]!);
      if (this.#outstanding > 0) continue;
      if (forward.length > 0) owner.socket.write(Buffer.concat(forward.splice(0)));
      if (owner.leaving) this.#finishLeaving(owner);
      else if (owner.txStatus === 'I' && owner.queue.length === 0) this.#release();
    }
    const owner = this.#owner;
    if (forward.length > 0 && owner && !owner.leaving) owner.socket.write(Buffer.concat(forward));
  }

  /** The owner is gone or said goodbye: leave the session clean, then hand it on. */
  #finishLeaving(client: Client): void {
    if (this.#outstanding > 0) return;
    if (client.txStatus !== 'I') {
      this.#outstanding++;
      client.txStatus = 'I';
      this.#upstream?.write(queryMessage('ROLLBACK'));
      return;
    }
    this.#clients.delete(client);
    if (!client.socket.destroyed) client.socket.end();
    this.#release();
  }

  #release(): void {
    this.#owner = undefined;
    this.#pump();
  }

  #onClientGone(client: Client): void {
    const index = this.#waiting.indexOf(client);
    if (index >= 0) this.#waiting.splice(index, 1);
    client.queue = [];
    if (this.#owner !== client) {
      this.#clients.delete(client);
      return;
    }
    if (client.leaving && this.#outstanding === 0 && client.txStatus === 'I') {
      this.#finishLeaving(client);
      return;
    }
    client.leaving = true;
    // It may have sent part of an extended-protocol exchange: a Sync ends it (and yields one more ReadyForQuery).
    this.#outstanding++;
    this.#upstream?.write(SYNC_MESSAGE);
  }

  #onUpstreamGone(error: Error): void {
    if (this.#broken) return;
    this.#broken = error;
    for (const client of [...this.#clients]) client.socket.destroy();
    this.#server?.close();
    this.#server = undefined;
  }
}
