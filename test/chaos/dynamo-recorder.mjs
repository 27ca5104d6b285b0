// An HTTP proxy in front of dynalite that records, server side, every lock write that took effect: DynamoDB
// keeps no lock history, so the checker needs one to judge each grant. Writes to one lock item pass one at a
// time (DynamoDB serialises writes to an item too), and after each applied write the proxy reads the item
// back consistently, so the record holds the exact state every write produced, in the order they applied.

import { createServer, request } from 'node:http';

const TARGET_PREFIX = 'DynamoDB_20120810.';

function parseJson(body) {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

function readBody(stream) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    stream.on('data', (chunk) => chunks.push(chunk));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
    stream.on('aborted', () => reject(new Error('request aborted')));
  });
}

/**
 * @typedef {object} LockWrite One applied write to a lock item, as recorded by {@link DynamoRecorder}.
 * @property {number} seq order in which the writes to all keys applied
 * @property {string} key the item's partition key (`lock:<lock key>`)
 * @property {string} condition the request's ConditionExpression
 * @property {string | undefined} seen the record version a takeover was conditioned on (`:seen`)
 * @property {{ owner?: string, ownerName?: string, rvn: string, fence: number, leaseMs: number } | null} state
 *   the item right after the write
 * @property {number} arrivedAt when the request reached the server (harness `performance.now()`)
 * @property {number} forwardedAt when it was handed to dynalite (after earlier writes to the key applied)
 * @property {number} doneAt when dynalite answered
 */

/** Records lock writes in front of dynalite; also injects "applied, answer lost" faults. */
export class DynamoRecorder {
  /** @type {LockWrite[]} */
  writes = [];
  /** Lock writes dynalite refused because their condition failed. */
  conditionFailures = 0;
  /** Answers dropped after the write applied. */
  answersLost = 0;
  #seq = 0;
  #server;
  #target;
  #partitionKey;
  #queues = new Map();
  #loseAnswers = 0;
  #onWrite;

  /**
   * @param {{ target: string, partitionKey?: string, onWrite?: (write: LockWrite) => void }} options
   *   `target` is dynalite's endpoint URL.
   */
  constructor(options) {
    this.#target = new URL(options.target);
    this.#partitionKey = options.partitionKey ?? 'key';
    this.#onWrite = options.onWrite;
  }

  /** Endpoint URL for the AWS SDK. */
  get url() {
    return `http://127.0.0.1:${this.#server.address().port}`;
  }

  get port() {
    return this.#server.address().port;
  }

  async start() {
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    this.#server.keepAliveTimeout = 60_000;
    await new Promise((resolve) => this.#server.listen(0, '127.0.0.1', () => resolve()));
    return this;
  }

  /** The next `count` lock writes are applied, but their answers never reach the client. */
  loseAnswers(count) {
    this.#loseAnswers += count;
  }

  /** Stops losing answers. */
  clear() {
    this.#loseAnswers = 0;
  }

  async close() {
    if (!this.#server) return;
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req, res) {
    const body = await readBody(req);
    const arrivedAt = performance.now();
    const target = String(req.headers['x-amz-target'] ?? '');
    const input =
      target === `${TARGET_PREFIX}UpdateItem` || target === `${TARGET_PREFIX}DeleteItem`
        ? parseJson(body)
        : undefined;
    const lockKey = input?.Key?.[this.#partitionKey]?.S;
    if (typeof lockKey !== 'string' || !lockKey.startsWith('lock:')) {
      const answer = await this.#forward(req.headers, body);
      this.#reply(res, answer);
      return;
    }
    // One write per lock item at a time, in arrival order.
    const previous = this.#queues.get(lockKey) ?? Promise.resolve();
    let done;
    const turn = new Promise((resolve) => {
      done = resolve;
    });
    const mine = previous.then(() => turn);
    this.#queues.set(lockKey, mine);
    await previous;
    try {
      const forwardedAt = performance.now();
      const answer = await this.#forward(req.headers, body);
      const doneAt = performance.now();
      if (answer.status === 200) {
        const state = await this.#read(input.TableName, lockKey, req.headers);
        const write = {
          seq: ++this.#seq,
          key: lockKey,
          condition: input.ConditionExpression ?? '',
          seen: input.ExpressionAttributeValues?.[':seen']?.S,
          state,
          arrivedAt,
          forwardedAt,
          doneAt,
        };
        this.writes.push(write);
        this.#onWrite?.(write);
        if (this.#loseAnswers > 0) {
          this.#loseAnswers--;
          this.answersLost++;
          res.socket?.destroy();
          return;
        }
      } else if (answer.body.includes('ConditionalCheckFailedException')) {
        this.conditionFailures++;
      }
      this.#reply(res, answer);
    } finally {
      done();
      if (this.#queues.get(lockKey) === mine) this.#queues.delete(lockKey);
    }
  }

  async #read(table, key, headers) {
    const input = { TableName: table, Key: { [this.#partitionKey]: { S: key } }, ConsistentRead: true };
    const answer = await this.#forward(
      {
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': `${TARGET_PREFIX}GetItem`,
        authorization: headers.authorization,
        'x-amz-date': headers['x-amz-date'],
      },
      Buffer.from(JSON.stringify(input)),
    );
    if (answer.status !== 200) throw new Error(`reading ${key} back failed: ${answer.status} ${answer.body}`);
    const item = JSON.parse(answer.body).Item;
    if (!item) return null;
    const num = (name) => (item[name]?.N === undefined ? undefined : Number(item[name].N));
    return {
      owner: item.owner?.S,
      ownerName: item.ownerName?.S,
      rvn: item.rvn?.S,
      fence: num('fence'),
      leaseMs: num('leaseMs') ?? 0,
      delayMs: num('lockDelayMs') ?? 0,
    };
  }

  #forward(headers, body) {
    return new Promise((resolve, reject) => {
      const forwarded = { ...headers, host: this.#target.host, 'content-length': String(body.length) };
      delete forwarded.connection;
      const upstream = request(
        {
          host: this.#target.hostname,
          port: this.#target.port,
          method: 'POST',
          path: '/',
          headers: forwarded,
        },
        (response) => {
          readBody(response).then(
            (answer) =>
              resolve({
                status: response.statusCode ?? 500,
                headers: response.headers,
                body: answer.toString(),
              }),
            reject,
          );
        },
      );
      upstream.on('error', reject);
      upstream.end(body);
    });
  }

  #reply(res, answer) {
    if (res.destroyed) return;
    const headers = { ...answer.headers };
    delete headers.connection;
    delete headers['transfer-encoding'];
    headers['content-length'] = String(Buffer.byteLength(answer.body));
    res.writeHead(answer.status, headers);
    res.end(answer.body);
  }
}
