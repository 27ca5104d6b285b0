/**
 * Go's `time.ParseDuration` and `time.Duration.String()`, byte for byte, because Consul echoes both in its
 * error bodies (`Session TTL 'x' invalid: time: invalid duration "x"`, `must be between [10s=24h0m0s]`).
 * Durations are nanoseconds held in a `bigint` so the full int64 range round-trips.
 */

const NANOSECOND = 1n;
const MICROSECOND = 1_000n;
const MILLISECOND = 1_000_000n;
const SECOND = 1_000_000_000n;
const MINUTE = 60n * SECOND;
const HOUR = 60n * MINUTE;
const MAX_INT64 = (1n << 63n) - 1n;

const UNITS: ReadonlyMap<string, bigint> = new Map([
  ['ns', NANOSECOND],
  ['us', MICROSECOND],
  ['\u00b5s', MICROSECOND],
  ['\u03bcs', MICROSECOND],
  ['ms', MILLISECOND],
  ['s', SECOND],
  ['m', MINUTE],
  ['h', HOUR],
]);

/** One second, one minute, ... in nanoseconds, for callers that build durations. */
export const NS = { MILLISECOND, SECOND, MINUTE, HOUR } as const;

/** Converts milliseconds (possibly fractional) to nanoseconds. */
export function msToNs(ms: number): bigint {
  return BigInt(Math.round(ms * 1_000_000));
}

/** Converts nanoseconds to milliseconds (fractional when needed). */
export function nsToMs(ns: bigint): number {
  return Number(ns) / 1_000_000;
}

/** Go's time package quotes its error operands with this minimal quoting. */
function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

function isDigit(ch: string | undefined): boolean {
  return ch !== undefined && ch >= '0' && ch <= '9';
}

/**
 * Parses a Go duration string (`"15s"`, `"1.5h"`, `"-2m3s"`, `"0"`) into nanoseconds.
 * Throws an `Error` whose message is exactly Go's.
 */
export function parseGoDuration(input: string): bigint {
  const invalid = () => new Error(`time: invalid duration ${goQuote(input)}`);
  let s = input;
  let neg = false;
  if (s !== '' && (s[0] === '-' || s[0] === '+')) {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0n;
  if (s === '') throw invalid();
  let total = 0n;
  while (s !== '') {
    if (!(s[0] === '.' || isDigit(s[0]))) throw invalid();
    let i = 0;
    while (isDigit(s[i])) i++;
    const intPart = s.slice(0, i);
    const pre = i > 0;
    let value = pre ? BigInt(intPart) : 0n;
    if (value > 1n << 63n) throw invalid();
    s = s.slice(i);
    let fraction = 0n;
    let scale = 1n;
    let post = false;
    if (s[0] === '.') {
      s = s.slice(1);
      let j = 0;
      while (isDigit(s[j])) j++;
      post = j > 0;
      // Go stops accumulating fraction digits once they would overflow; 18 digits are plenty.
      const digits = s.slice(0, j).slice(0, 18);
      if (digits !== '') {
        fraction = BigInt(digits);
        scale = 10n ** BigInt(digits.length);
      }
      s = s.slice(j);
    }
    if (!pre && !post) throw invalid();
    let u = 0;
    while (u < s.length && s[u] !== '.' && !isDigit(s[u])) u++;
    if (u === 0) throw new Error(`time: missing unit in duration ${goQuote(input)}`);
    const unitName = s.slice(0, u);
    s = s.slice(u);
    const unit = UNITS.get(unitName);
    if (unit === undefined) {
      throw new Error(`time: unknown unit ${goQuote(unitName)} in duration ${goQuote(input)}`);
    }
    if (value > (1n << 63n) / unit) throw invalid();
    value *= unit;
    if (fraction > 0n) {
      value += (fraction * unit) / scale;
      if (value > 1n << 63n) throw invalid();
    }
    total += value;
    if (total > 1n << 63n) throw invalid();
  }
  if (neg) return -total;
  if (total > MAX_INT64) throw invalid();
  return total;
}

function fmtFrac(v: bigint, prec: number): { text: string; rest: bigint } {
  let text = '';
  let print = false;
  let rest = v;
  for (let i = 0; i < prec; i++) {
    const digit = rest % 10n;
    print = print || digit !== 0n;
    if (print) text = digit.toString() + text;
    rest /= 10n;
  }
  if (print) text = `.${text}`;
  return { text, rest };
}

/** Formats nanoseconds like Go's `time.Duration.String()`: `0s`, `200ms`, `1.5µs`, `1m30s`, `24h0m0s`. */
export function formatGoDuration(ns: bigint): string {
  const neg = ns < 0n;
  let u = neg ? -ns : ns;
  let out: string;
  if (u < SECOND) {
    if (u === 0n) return '0s';
    let prec: number;
    let unit: string;
    if (u < MICROSECOND) {
      prec = 0;
      unit = 'ns';
    } else if (u < MILLISECOND) {
      prec = 3;
      unit = '\u00b5s';
    } else {
      prec = 6;
      unit = 'ms';
    }
    const { text, rest } = fmtFrac(u, prec);
    out = `${rest}${text}${unit}`;
  } else {
    const { text, rest } = fmtFrac(u, 9);
    u = rest;
    out = `${u % 60n}${text}s`;
    u /= 60n;
    if (u > 0n) {
      out = `${u % 60n}m${out}`;
      u /= 60n;
      if (u > 0n) out = `${u}h${out}`;
    }
  }
  return neg ? `-${out}` : out;
}
