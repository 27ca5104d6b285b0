import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import dynalite from 'dynalite';

/** Options for {@link startDynalite}. */
export interface StartDynaliteOptions {
  /** Port to listen on; a free random port when omitted or 0. */
  port?: number;
  /** Interface to bind; `127.0.0.1` by default. */
  host?: string;
  /**
   * How long a new table stays in `CREATING` before it becomes `ACTIVE`, in ms. Defaults to 0 so tables are
   * usable at once; raise it to exercise code that waits for a table.
   */
  createTableMs?: number;
}

/** A running in-process dynalite server. */
export interface DynaliteServer {
  /** Endpoint URL for the AWS SDK (`endpoint` / `AWS_ENDPOINT_URL_DYNAMODB`), e.g. `http://127.0.0.1:41234`. */
  readonly endpoint: string;
  /** The port it listens on. */
  readonly port: number;
  /**
   * Stops the server: refuses new requests, lets requests already being processed finish (up to 5 s), drops
   * every connection and frees the in-memory store. Idempotent.
   */
  close(): Promise<void>;
}

type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * Starts dynalite (a DynamoDB implementation on an in-memory LevelDB) inside this process, on a random free
 * port unless told otherwise.
 *
 * dynalite speaks the DynamoDB wire protocol and accepts any credentials. It does not implement
 * transactions, TTL, or `ReturnValuesOnConditionCheckFailure`: code under test must not depend on them.
 */
export async function startDynalite(options: StartDynaliteOptions = {}): Promise<DynaliteServer> {
  const host = options.host ?? '127.0.0.1';
  const server = dynalite({ createTableMs: options.createTableMs ?? 0, deleteTableMs: 0, updateTableMs: 0 });

  // dynalite throws (uncaught) when a request still being processed touches its store after close, so
  // requests are counted until answered and close() waits for them.
  const handlers = server.listeners('request') as RequestHandler[];
  server.removeAllListeners('request');
  let inflight = 0;
  let closing = false;
  let drained: (() => void) | undefined;
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (closing) {
      res.destroy();
      return;
    }
    inflight++;
    let answered = false;
    const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
    res.end = ((...args: unknown[]) => {
      if (!answered) {
        answered = true;
        inflight--;
        if (inflight === 0) drained?.();
      }
      return end(...args);
    }) as ServerResponse['end'];
    for (const handler of handlers) handler.call(server, req, res);
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once('error', onError);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  let closed: Promise<void> | undefined;
  const shutdown = async (): Promise<void> => {
    closing = true;
    if (inflight > 0) {
      await new Promise<void>((resolve) => {
        const cap = setTimeout(resolve, 5_000);
        drained = () => {
          clearTimeout(cap);
          resolve();
        };
      });
    }
    await new Promise<void>((resolve, reject) => {
      server.close((error?: Error) => (error ? reject(error) : resolve()));
      server.closeAllConnections();
    });
  };
  return {
    endpoint: `http://${urlHost}:${port}`,
    port,
    close() {
      closed ??= shutdown();
      return closed;
    },
  };
}
