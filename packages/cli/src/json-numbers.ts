const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/**
 * The first number in the JSON text `json` (already known to parse) that a double cannot hold exactly:
 * `12345678901234567890`, `0.1000000000000000000001`, `1e400`. A number counts as exact when the double it
 * parses to, written back out, denotes the same decimal value (`0.10` and `1e2` are exact; `0.1` too, as
 * JSON writes it back as `0.1`). Strings are skipped. `undefined` when every number is exact.
 */
export function inexactNumber(json: string): string | undefined {
  for (let i = 0; i < json.length; i++) {
    const c = json[i]!;
    if (c === '"') {
      for (i++; i < json.length && json[i] !== '"'; i++) if (json[i] === '\\') i++;
      continue;
    }
    if (c !== '-' && (c < '0' || c > '9')) continue;
    NUMBER.lastIndex = i;
    const token = NUMBER.exec(json)?.[0];
    if (token === undefined) continue;
    const value = Number(token);
    if (!Number.isFinite(value) || decimal(String(value)) !== decimal(token)) return token;
    i += token.length - 1;
  }
  return undefined;
}

/** A canonical form of a decimal number's value: `digits e exponent`, sign kept, zero as `0`. */
function decimal(text: string): string {
  const match = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!match) return text;
  const [, sign, whole, fraction = '', exponent = '0'] = match;
  let digits = `${whole}${fraction}`;
  let exp = Number(exponent) - fraction.length;
  const lead = digits.search(/[1-9]/);
  if (lead < 0) return '0';
  digits = digits.slice(lead);
  const trailing = digits.length - digits.replace(/0+$/, '').length;
  digits = digits.slice(0, digits.length - trailing);
  exp += trailing;
  return `${sign}${digits}e${exp}`;
}
