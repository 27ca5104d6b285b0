import { InvalidArgumentError } from '@baton/core';

/**
 * Characters a baton key keeps as they are in the Consul key. Everything else is escaped. `,` is part of
 * Consul's key alphabet and is used as the escape character, so it is never literal.
 */
const LITERAL = /^[A-Za-z0-9_\-./]$/;
const ESCAPE = ',';
const HEX = '0123456789ABCDEF';

/**
 * A valid key prefix: characters of the literal alphabet only, not starting with `/`, and no path segment
 * starting with `.` (so neither the prefix nor any key under it can contain a `.` or `..` segment).
 * Usually ends with `/`.
 */
export function isValidPrefix(prefix: string): boolean {
  if (!/^[A-Za-z0-9_\-./]*$/.test(prefix) || prefix.startsWith('/')) return false;
  return !prefix.split('/').some((segment) => segment.startsWith('.'));
}

/** True when `text` has no lone UTF-16 surrogates, so it has a UTF-8 encoding. */
export function isWellFormedUnicode(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
      i++;
    } else if (unit >= 0xdc00 && unit <= 0xdfff) {
      return false;
    }
  }
  return true;
}

/**
 * Maps caller keys (any well-formed Unicode string) onto Consul keys in the alphabet `[A-Za-z0-9,-_./]`
 * under a prefix, reversibly.
 *
 * The encoding, applied code point by code point:
 * - `A-Z a-z 0-9 - _` are kept;
 * - `/` is kept (so task ids like `task/42` stay browsable in the Consul UI), except as the very first
 *   character of the Consul key, where it is escaped;
 * - `.` is kept, except as the first character of a path segment (after `/` or at the start), where it is
 *   escaped, so no `.` or `..` segment can ever appear;
 * - every other character, including `,` itself, becomes `,XX` for each byte of its UTF-8 encoding
 *   (uppercase hex): `task 42` → `task,2042`, `é` → `,C3,A9`.
 *
 * Because each character's encoding depends only on the characters before it, the encoding of a prefix is
 * a prefix of the encoding of every key that starts with it: `list(prefix)` maps onto one `?recurse` query.
 */
export class KeyCodec {
  readonly prefix: string;
  readonly #prefixEndsSegment: boolean;

  constructor(prefix: string) {
    if (!isValidPrefix(prefix)) {
      throw new InvalidArgumentError(
        `invalid Consul key prefix ${JSON.stringify(prefix)}: use letters, digits, '-', '_', '.', '/', no leading '/' and no segment starting with '.'`,
      );
    }
    this.prefix = prefix;
    this.#prefixEndsSegment = prefix === '' || prefix.endsWith('/');
  }

  /** The Consul key for `key`. Throws `INVALID_ARGUMENT` for strings that are not well-formed Unicode. */
  encode(key: string): string {
    return this.prefix + this.#encodeBody(key);
  }

  /** The Consul key prefix that every key starting with `prefix` encodes under. */
  encodePrefix(prefix: string): string {
    return this.prefix + this.#encodeBody(prefix);
  }

  /** The caller key behind a Consul key, or `undefined` when it is not one this codec produces. */
  decode(consulKey: string): string | undefined {
    if (!consulKey.startsWith(this.prefix)) return undefined;
    const body = consulKey.slice(this.prefix.length);
    const bytes: number[] = [];
    for (let i = 0; i < body.length; i++) {
      const ch = body[i]!;
      if (ch === ESCAPE) {
        const hex = body.slice(i + 1, i + 3);
        if (!/^[0-9A-F]{2}$/.test(hex)) return undefined;
        bytes.push(Number.parseInt(hex, 16));
        i += 2;
      } else if (LITERAL.test(ch)) {
        bytes.push(ch.charCodeAt(0));
      } else {
        return undefined;
      }
    }
    let key: string;
    try {
      key = new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
    } catch {
      return undefined;
    }
    // Only the canonical encoding decodes, so two Consul keys never map to the same caller key.
    return this.#encodeBody(key) === body ? key : undefined;
  }

  #encodeBody(key: string): string {
    if (!isWellFormedUnicode(key)) {
      throw new InvalidArgumentError(
        `lock key must be well-formed Unicode (no lone surrogates), got ${JSON.stringify(key)}`,
      );
    }
    let out = '';
    let segmentStart = this.#prefixEndsSegment;
    let first = this.prefix === '';
    for (const ch of key) {
      const keep =
        ch.length === 1 && LITERAL.test(ch) && !(ch === '.' && segmentStart) && !(ch === '/' && first);
      out += keep ? ch : escapeChar(ch);
      segmentStart = ch === '/';
      first = false;
    }
    return out;
  }
}

function escapeChar(ch: string): string {
  let out = '';
  for (const byte of Buffer.from(ch, 'utf8')) out += ESCAPE + HEX[byte >> 4] + HEX[byte & 15];
  return out;
}
