/**
 * JSON the way Consul's Go code reads and writes it:
 *
 * - decoding behaves like `json.NewDecoder(body).Decode(&v)`: only the first value is read (trailing bytes are
 *   ignored), numbers keep their literal text so uint64 fields lose no precision, and syntax errors carry Go's
 *   messages (`invalid character 'x' looking for beginning of value`, `unexpected EOF`, `EOF`);
 * - object keys are matched case-insensitively, as `encoding/json` does for struct fields;
 * - encoding accepts `bigint` and escapes `<`, `>`, `&`, U+2028 and U+2029 as Go does.
 */

/** A JSON number, kept as its literal text. */
export class GoNumber {
  constructor(readonly literal: string) {}
}

/** A decoded JSON value. Objects keep their keys in order; look fields up with {@link field}. */
export type GoJson = null | boolean | string | GoNumber | GoJson[] | GoObject;

/** A decoded JSON object. */
export class GoObject {
  constructor(readonly entries: ReadonlyArray<readonly [string, GoJson]>) {}
}

/** Thrown for malformed JSON and for values of the wrong type; `message` is what Go would say. */
export class GoJsonError extends Error {}

function quoteChar(ch: string): string {
  if (ch === "'") return "'\\''";
  if (ch === '"') return `'"'`;
  const json = JSON.stringify(ch);
  return `'${json.slice(1, -1)}'`;
}

class Parser {
  #pos = 0;
  constructor(readonly text: string) {}

  #eof(): never {
    throw new GoJsonError('unexpected EOF');
  }

  #skipSpace(): void {
    while (this.#pos < this.text.length) {
      const ch = this.text[this.#pos];
      if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') this.#pos++;
      else break;
    }
  }

  #peek(): string | undefined {
    return this.text[this.#pos];
  }

  parseTop(): GoJson {
    this.#skipSpace();
    if (this.#pos >= this.text.length) throw new GoJsonError('EOF');
    return this.#value('looking for beginning of value');
  }

  #value(context: string): GoJson {
    this.#skipSpace();
    const ch = this.#peek();
    if (ch === undefined) this.#eof();
    if (ch === '{') return this.#object();
    if (ch === '[') return this.#array();
    if (ch === '"') return this.#string();
    if (ch === '-' || (ch >= '0' && ch <= '9')) return this.#number();
    if (ch === 't') return this.#literal('true', true);
    if (ch === 'f') return this.#literal('false', false);
    if (ch === 'n') return this.#literal('null', null);
    throw new GoJsonError(`invalid character ${quoteChar(ch)} ${context}`);
  }

  #literal<T extends GoJson>(word: string, value: T): T {
    for (let i = 0; i < word.length; i++) {
      const ch = this.text[this.#pos + i];
      if (ch === undefined) this.#eof();
      if (ch !== word[i]) {
        throw new GoJsonError(
          `invalid character ${quoteChar(ch)} in literal ${word} (expecting ${quoteChar(word[i]!)})`,
        );
      }
    }
    this.#pos += word.length;
    return value;
  }

  #number(): GoNumber {
    const start = this.#pos;
    const digitsAt = () => {
      const ch = this.#peek();
      return ch !== undefined && ch >= '0' && ch <= '9';
    };
    if (this.#peek() === '-') {
      this.#pos++;
      if (this.#peek() === undefined) this.#eof();
      if (!digitsAt())
        throw new GoJsonError(`invalid character ${quoteChar(this.#peek()!)} in numeric literal`);
    }
    if (this.#peek() === '0') this.#pos++;
    else while (digitsAt()) this.#pos++;
    if (this.#peek() === '.') {
      this.#pos++;
      if (this.#peek() === undefined) this.#eof();
      if (!digitsAt()) {
        throw new GoJsonError(
          `invalid character ${quoteChar(this.#peek()!)} after decimal point in numeric literal`,
        );
      }
      while (digitsAt()) this.#pos++;
    }
    if (this.#peek() === 'e' || this.#peek() === 'E') {
      this.#pos++;
      if (this.#peek() === '+' || this.#peek() === '-') this.#pos++;
      if (this.#peek() === undefined) this.#eof();
      if (!digitsAt()) {
        throw new GoJsonError(`invalid character ${quoteChar(this.#peek()!)} in exponent of numeric literal`);
      }
      while (digitsAt()) this.#pos++;
    }
    return new GoNumber(this.text.slice(start, this.#pos));
  }

  #string(): string {
    this.#pos++;
    let out = '';
    for (;;) {
      const ch = this.#peek();
      if (ch === undefined) this.#eof();
      this.#pos++;
      if (ch === '"') return out;
      if (ch === '\\') {
        const esc = this.#peek();
        if (esc === undefined) this.#eof();
        this.#pos++;
        const simple: Record<string, string> = {
          '"': '"',
          '\\': '\\',
          '/': '/',
          b: '\b',
          f: '\f',
          n: '\n',
          r: '\r',
          t: '\t',
        };
        if (simple[esc] !== undefined) {
          out += simple[esc];
        } else if (esc === 'u') {
          let hex = '';
          for (let i = 0; i < 4; i++) {
            const h = this.#peek();
            if (h === undefined) this.#eof();
            if (!/[0-9a-fA-F]/.test(h)) {
              throw new GoJsonError(`invalid character ${quoteChar(h)} in \\u hexadecimal character escape`);
            }
            hex += h;
            this.#pos++;
          }
          out += String.fromCharCode(Number.parseInt(hex, 16));
        } else {
          throw new GoJsonError(`invalid character ${quoteChar(esc)} in string escape code`);
        }
        continue;
      }
      if (ch < ' ') throw new GoJsonError(`invalid character ${quoteChar(ch)} in string literal`);
      out += ch;
    }
  }

  #array(): GoJson[] {
    this.#pos++;
    const items: GoJson[] = [];
    this.#skipSpace();
    if (this.#peek() === ']') {
      this.#pos++;
      return items;
    }
    for (;;) {
      items.push(this.#value('looking for beginning of value'));
      this.#skipSpace();
      const ch = this.#peek();
      if (ch === undefined) this.#eof();
      this.#pos++;
      if (ch === ',') continue;
      if (ch === ']') return items;
      throw new GoJsonError(`invalid character ${quoteChar(ch)} after array element`);
    }
  }

  #object(): GoObject {
    this.#pos++;
    const entries: Array<[string, GoJson]> = [];
    this.#skipSpace();
    if (this.#peek() === '}') {
      this.#pos++;
      return new GoObject(entries);
    }
    for (;;) {
      this.#skipSpace();
      const ch = this.#peek();
      if (ch === undefined) this.#eof();
      if (ch !== '"')
        throw new GoJsonError(
          `invalid character ${quoteChar(ch)} looking for beginning of object key string`,
        );
      const key = this.#string();
      this.#skipSpace();
      const colon = this.#peek();
      if (colon === undefined) this.#eof();
      if (colon !== ':') throw new GoJsonError(`invalid character ${quoteChar(colon)} after object key`);
      this.#pos++;
      entries.push([key, this.#value('looking for beginning of value')]);
      this.#skipSpace();
      const next = this.#peek();
      if (next === undefined) this.#eof();
      this.#pos++;
      if (next === ',') continue;
      if (next === '}') return new GoObject(entries);
      throw new GoJsonError(`invalid character ${quoteChar(next)} after object key:value pair`);
    }
  }
}

/** Decodes the first JSON value of `text` as Go's `json.Decoder` would. */
export function decodeGoJson(text: string): GoJson {
  return new Parser(text).parseTop();
}

/** Go's name for a JSON value's kind, as used in `cannot unmarshal <kind> into ...`. */
export function goKind(value: GoJson): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'string') return 'string';
  if (value instanceof GoNumber) return `number ${value.literal}`;
  if (Array.isArray(value)) return 'array';
  return 'object';
}

/**
 * Looks a struct field up the way `encoding/json` does: exact match first, then case-insensitive; the last
 * matching key wins. Returns `undefined` when absent.
 */
export function field(object: GoObject, name: string): GoJson | undefined {
  let exact: GoJson | undefined;
  let folded: GoJson | undefined;
  const lower = name.toLowerCase();
  for (const [key, value] of object.entries) {
    if (key === name) exact = value;
    else if (key.toLowerCase() === lower) folded = value;
  }
  return exact !== undefined ? exact : folded;
}

/** Builds Go's `json: cannot unmarshal ...` error for a struct field. */
export function typeError(value: GoJson, struct: string, path: string, goType: string): GoJsonError {
  const kind = goKind(value);
  return new GoJsonError(
    `json: cannot unmarshal ${kind} into Go struct field ${struct}.${path} of type ${goType}`,
  );
}

/** Reads an optional string field; `null` leaves the default. */
export function stringField(object: GoObject, name: string, struct: string, path = name): string | undefined {
  const value = field(object, name);
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw typeError(value, struct, path, 'string');
  return value;
}

/** Reads an optional uint64 field as a bigint; `null` leaves the default. */
export function uint64Field(object: GoObject, name: string, struct: string, path = name): bigint | undefined {
  const value = field(object, name);
  if (value === undefined || value === null) return undefined;
  if (!(value instanceof GoNumber) || !/^\d+$/.test(value.literal) || BigInt(value.literal) >= 1n << 64n) {
    throw typeError(value, struct, path, 'uint64');
  }
  return BigInt(value.literal);
}

/** Reads an optional `[]string` field; `null` yields `null` (Go sets the slice to nil). */
export function stringArrayField(
  object: GoObject,
  name: string,
  struct: string,
  goType = '[]string',
): string[] | null | undefined {
  const value = field(object, name);
  if (value === undefined) return undefined;
  if (value === null) return null;
  if (!Array.isArray(value)) throw typeError(value, struct, name, goType);
  return value.map((item, i) => {
    if (typeof item !== 'string') throw typeError(item, struct, `${name}[${i}]`, 'string');
    return item;
  });
}

/**
 * Decodes standard base64 as Go's `base64.StdEncoding` does for `[]byte` JSON fields: padding required,
 * `\r` and `\n` ignored, anything else outside the alphabet rejected with Go's message.
 */
export function decodeGoBase64(text: string): Buffer {
  const chars: Array<{ ch: string; at: number }> = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch !== '\r' && ch !== '\n') chars.push({ ch, at: i });
  }
  const fail = (index: number) =>
    new GoJsonError(`illegal base64 data at input byte ${chars[index]?.at ?? text.length}`);
  for (let i = 0; i < chars.length; i++) {
    const { ch } = chars[i]!;
    if (/[A-Za-z0-9+/]/.test(ch)) continue;
    if (ch !== '=') throw fail(i);
    // Padding may only complete the last quantum: "xx==" or "xxx=".
    const slot = i % 4;
    const rest = chars
      .slice(i)
      .map((c) => c.ch)
      .join('');
    if (slot < 2) throw fail(i);
    if ((slot === 2 && rest !== '==') || (slot === 3 && rest !== '=')) throw fail(i + 1);
    break;
  }
  if (chars.length % 4 !== 0) throw fail(chars.length - (chars.length % 4));
  return Buffer.from(chars.map((c) => c.ch).join(''), 'base64');
}

/** A value {@link encodeGoJson} can write. Object keys are written in insertion order. */
export type JsonOut =
  | null
  | boolean
  | number
  | bigint
  | string
  | ReadonlyArray<JsonOut>
  | { readonly [key: string]: JsonOut | undefined };

function encodeString(s: string): string {
  return JSON.stringify(s)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** Encodes like Go's `json.Marshal` (or `json.MarshalIndent(v, "", "    ")` plus a newline when `pretty`). */
export function encodeGoJson(value: JsonOut, pretty = false): string {
  const out = write(value, pretty ? '\n' : '');
  return pretty ? `${out}\n` : out;
}

function write(value: JsonOut, newline: string): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : 'null';
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'string') return encodeString(value);
  const inner = newline === '' ? '' : `${newline}    `;
  const sep = newline === '' ? ':' : ': ';
  if (isArray(value)) {
    if (value.length === 0) return '[]';
    return `[${value.map((v) => inner + write(v, inner)).join(',')}${newline}]`;
  }
  const parts: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    if (v === undefined) continue;
    parts.push(`${inner}${encodeString(key)}${sep}${write(v, inner)}`);
  }
  if (parts.length === 0) return '{}';
  return `{${parts.join(',')}${newline}}`;
}

function isArray(value: JsonOut): value is ReadonlyArray<JsonOut> {
  return Array.isArray(value);
}
