/**
 * Splits a PostgreSQL wire-protocol byte stream into whole messages without copying more than once per
 * message: chunks are kept as they arrive and joined only when a message is complete.
 */
export class FrameReader {
  #chunks: Buffer[] = [];
  #size = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#size += chunk.length;
  }

  /** A message that starts with a type byte and an int32 length (every message after startup). */
  nextTyped(): Buffer | undefined {
    const head = this.#peek(5);
    if (!head) return undefined;
    const length = head.readInt32BE(1);
    if (length < 4) throw new Error(`malformed message: length ${length}`);
    return this.#take(1 + length);
  }

  /** A startup-phase packet: an int32 length (itself included) and a body, no type byte. */
  nextUntyped(): Buffer | undefined {
    const head = this.#peek(4);
    if (!head) return undefined;
    const length = head.readInt32BE(0);
    if (length < 8 || length > 10_000) throw new Error(`malformed startup packet: length ${length}`);
    return this.#take(length);
  }

  #peek(n: number): Buffer | undefined {
    if (this.#size < n) return undefined;
    if (this.#chunks[0]!.length < n) this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0];
  }

  #take(n: number): Buffer | undefined {
    if (this.#size < n) return undefined;
    let first = this.#chunks[0]!;
    if (first.length < n) {
      first = Buffer.concat(this.#chunks);
      this.#chunks = [first];
    }
    const frame = first.subarray(0, n);
    if (first.length === n) this.#chunks.shift();
    else this.#chunks[0] = first.subarray(n);
    this.#size -= n;
    return frame;
  }
}

/** Builds a simple-query message (`Q`). */
export function queryMessage(sql: string): Buffer {
  const text = Buffer.from(`${sql}\0`, 'utf8');
  const frame = Buffer.alloc(5 + text.length);
  frame.write('Q', 0, 'latin1');
  frame.writeInt32BE(4 + text.length, 1);
  text.copy(frame, 5);
  return frame;
}

/** A Sync message (`S`). */
export const SYNC_MESSAGE = Buffer.from([0x53, 0, 0, 0, 4]);

/** Builds a protocol 3.0 startup message. */
export function startupMessage(parameters: Readonly<Record<string, string>>): Buffer {
  const body = Buffer.from(
    `${Object.entries(parameters)
      .map(([k, v]) => `${k}\0${v}\0`)
      .join('')}\0`,
    'utf8',
  );
  const frame = Buffer.alloc(8 + body.length);
  frame.writeInt32BE(8 + body.length, 0);
  frame.writeInt32BE(PROTOCOL_3_0, 4);
  body.copy(frame, 8);
  return frame;
}

/** Builds an ErrorResponse (`E`) with severity FATAL, the given SQLSTATE and message. */
export function fatalMessage(code: string, message: string): Buffer {
  const fields = Buffer.from(`SFATAL\0VFATAL\0C${code}\0M${message}\0\0`, 'utf8');
  const frame = Buffer.alloc(5 + fields.length);
  frame.write('E', 0, 'latin1');
  frame.writeInt32BE(4 + fields.length, 1);
  fields.copy(frame, 5);
  return frame;
}

export const PROTOCOL_3_0 = 196_608;
export const SSL_REQUEST = 80_877_103;
export const GSSENC_REQUEST = 80_877_104;
export const CANCEL_REQUEST = 80_877_102;

/** Reads the NUL-terminated string at `offset`; returns it and the offset after its NUL. */
function cstring(frame: Buffer, offset: number): [text: string, next: number] {
  const end = frame.indexOf(0, offset);
  if (end < 0) throw new Error('malformed message: unterminated string');
  return [frame.toString('utf8', offset, end), end + 1];
}

/** The statement name of a Parse message (`P`) and the rest of its body (query text and parameter types). */
export function parseMessageParts(frame: Buffer): { name: string; body: Buffer } {
  const [name, next] = cstring(frame, 5);
  return { name, body: frame.subarray(next) };
}

/** A Parse message (`P`) for the unnamed statement with the given body (query text and parameter types). */
export function unnamedParseMessage(body: Buffer): Buffer {
  const frame = Buffer.alloc(5 + 1 + body.length);
  frame.write('P', 0, 'latin1');
  frame.writeInt32BE(4 + 1 + body.length, 1);
  frame[5] = 0;
  body.copy(frame, 6);
  return frame;
}

/** The SQL text of a simple-query message (`Q`). */
export function queryText(frame: Buffer): string {
  return cstring(frame, 5)[0];
}

/** The channel of a NotificationResponse (`A`: int32 pid, channel, payload). */
export function notificationChannel(frame: Buffer): string {
  return cstring(frame, 9)[0];
}
