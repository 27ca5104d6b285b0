import type { FieldDocs } from './config.js';

/**
 * Redaction: the one place that knows what is secret, so that no message, error or log line baton writes
 * shows a password or a token.
 *
 * - **Fields**: a setting whose {@link FieldDocs} say `secret: true` (an ACL token, a password) is never
 *   shown; one that says `secret: 'url'` (a connection string, an agent address) is shown with its
 *   credentials masked. Backends declare this once, next to the field's docs, and every path that renders
 *   configuration ({@link parseConfig}'s `got …`) goes through {@link showValue}.
 * - **URL parts**: the password of `scheme://user:password@host` and the values of credential query
 *   parameters (`password`, `sslpassword`, `token`, `secret`, `api_key`, AWS signatures, ...) are masked
 *   wherever a URL appears in a message ({@link redactUrls}).
 * - **Known values**: every secret value parseConfig has seen (and any a backend reads at run time, such
 *   as the contents of a token file) is remembered for the life of the process ({@link rememberSecret});
 *   {@link redact} replaces every occurrence of one in free text. This net catches messages nobody
 *   foresaw (a server or client library echoing a value back). Values shorter than
 *   {@link MIN_REMEMBERED_LENGTH} characters are not searched for in free text, because a short password
 *   such as `baton` would garble every message that names baton; they are still masked wherever they
 *   appear as a secret field or a URL password.
 *
 * The CLI passes every error message, warning and log line through {@link redact}.
 */

/** What a secret is replaced with. */
export const REDACTED = '[redacted]';

/** Remembered secrets shorter than this are masked only by position (field, URL part), not searched for. */
export const MIN_REMEMBERED_LENGTH = 8;

/** Query parameters (and libpq `key=value` settings) whose values are credentials. */
const SECRET_PARAMETER =
  /^(?:[a-z0-9_.-]*pass(?:word|wd)?|pwd|[a-z0-9_.-]*token|[a-z0-9_.-]*secret|api[-_]?key|x-amz-signature|x-amz-credential|signature|sig)$/i;

/** A URL-looking run of text: a scheme, `://`, then everything up to whitespace, a quote or a bracket. */
const URL_IN_TEXT = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s"'<>`]*)/gi;

/** `name=value` pairs after `?`, `&`, `;` or whitespace (query strings, libpq keyword/value strings). */
const PARAMETER_IN_TEXT = /(^|[?&;\s])([a-z0-9_.-]+)(\s*=\s*)([^&#;\s"'<>`]*)/gi;

const remembered = new Set<string>();
let rememberedPattern: RegExp | undefined;

/** True when `docs` mark a field as secret, wholly or in part. */
export function isSecretField(docs: FieldDocs | undefined): boolean {
  return docs?.secret === true || docs?.secret === 'url';
}

/**
 * The parts of `text` that are credentials masked in every URL it contains: the password of the userinfo
 * (`user:password@`, the user name is kept) and the values of credential query parameters. Works on
 * malformed URLs too (it never parses them); a URL with `@` in its path may lose more than its password.
 */
export function redactUrls(text: string): string {
  return text.replace(URL_IN_TEXT, (_match, scheme: string, rest: string) => scheme + redactUrlRest(rest));
}

function redactUrlRest(rest: string): string {
  let out = rest;
  const at = out.lastIndexOf('@');
  if (at >= 0) {
    const userinfo = out.slice(0, at);
    const colon = userinfo.indexOf(':');
    if (colon >= 0) {
      const user = userinfo.slice(0, colon);
      const shown = /[/?#@]/.test(user) ? REDACTED : `${user}:${REDACTED}`;
      out = `${shown}${out.slice(at)}`;
    }
  }
  return redactParameters(out);
}

function redactParameters(text: string): string {
  return text.replace(PARAMETER_IN_TEXT, (match, lead: string, name: string, eq: string, value: string) =>
    SECRET_PARAMETER.test(name) && value !== '' && value !== REDACTED
      ? `${lead}${name}${eq}${REDACTED}`
      : match,
  );
}

/**
 * Remembers `value` as a secret for the rest of the process, so {@link redact} masks it in any text.
 * Blank values are ignored; surrounding whitespace is trimmed. Also remembers the forms the value takes
 * when percent-encoded in a URL or escaped in JSON.
 */
export function rememberSecret(value: unknown): void {
  if (typeof value !== 'string') return;
  const trimmed = value.trim();
  if (trimmed.length < MIN_REMEMBERED_LENGTH) return;
  const before = remembered.size;
  for (const form of [trimmed, JSON.stringify(trimmed).slice(1, -1), encodeURIComponent(trimmed)]) {
    remembered.add(form);
  }
  if (remembered.size !== before) rememberedPattern = undefined;
}

/** Remembers every secret in `input` that `fields` declare: secret fields whole, URL fields' credentials. */
export function rememberSecretsOf(
  input: unknown,
  fields: Readonly<Record<string, FieldDocs>> | undefined,
): void {
  if (!fields) return;
  for (const [path, docs] of Object.entries(fields)) {
    if (!isSecretField(docs)) continue;
    const value = valueAtPath(input, path.split('.'));
    if (typeof value !== 'string' && typeof value !== 'number') continue;
    if (docs.secret === true) rememberSecret(String(value));
    else for (const secret of urlCredentials(String(value))) rememberSecret(secret);
  }
}

/** The secret values in a URL-ish string: its userinfo password and credential parameters (raw and decoded). */
export function urlCredentials(text: string): string[] {
  const found: string[] = [];
  const add = (value: string) => {
    found.push(value);
    try {
      const decoded = decodeURIComponent(value);
      if (decoded !== value) found.push(decoded);
    } catch {
      // Not valid percent-encoding: the raw form is what would be echoed.
    }
  };
  for (const [, , rest = ''] of text.matchAll(URL_IN_TEXT)) {
    const at = rest.lastIndexOf('@');
    const colon = at >= 0 ? rest.slice(0, at).indexOf(':') : -1;
    if (colon >= 0) add(rest.slice(colon + 1, at));
  }
  for (const [, , name = '', , value = ''] of text.matchAll(PARAMETER_IN_TEXT)) {
    if (SECRET_PARAMETER.test(name) && value !== '') add(value);
  }
  return found;
}

/**
 * `text` with every remembered secret and every URL credential masked. Every message, warning and log line
 * baton renders from user-supplied values goes through this.
 */
export function redact(text: string): string {
  let out = redactParameters(redactUrls(text));
  if (remembered.size > 0) {
    rememberedPattern ??= new RegExp(
      [...remembered]
        .sort((a, b) => b.length - a.length)
        .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
        .join('|'),
      'g',
    );
    out = out.replace(rememberedPattern, REDACTED);
  }
  return out;
}

/**
 * A user-supplied value rendered for a message (`got …`). `docs` are those of the field the value belongs
 * to, or of the nearest enclosing field that has docs:
 *
 * - a secret field shows {@link REDACTED}; a URL field shows its URL with credentials masked;
 * - an object or array shows only its keys or length: it may hold a secret nobody declared (a misspelt
 *   `tokn`, a token in a list);
 * - anything else shows as JSON, through {@link redact}.
 */
export function showValue(value: unknown, docs?: FieldDocs): string {
  if (docs?.secret === true) return REDACTED;
  if (docs?.secret === 'url' && typeof value === 'string') return JSON.stringify(redactUrls(value));
  if (docs?.secret === 'url') return REDACTED;
  if (Array.isArray(value)) return `an array of ${value.length} item${value.length === 1 ? '' : 's'}`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value);
    return keys.length === 0
      ? 'an empty object'
      : `an object with keys ${keys.map((k) => quoteForMessage(k, 40)).join(', ')}`;
  }
  return redact(JSON.stringify(value) ?? String(value));
}

/** The docs of `path` or of the nearest enclosing field that has docs (`a.b.c`, then `a.b`, then `a`). */
export function docsFor(
  path: ReadonlyArray<PropertyKey>,
  fields: Readonly<Record<string, FieldDocs>> | undefined,
): FieldDocs | undefined {
  for (let length = path.length; length > 0; length--) {
    const docs = fields?.[path.slice(0, length).map(String).join('.')];
    if (docs) return docs;
  }
  return undefined;
}

/** Every field `fields` declare secret, with its docs (for tests and docs that must cover each one). */
export function secretFields(
  fields: Readonly<Record<string, FieldDocs>> | undefined,
): Array<{ path: string; docs: FieldDocs }> {
  return Object.entries(fields ?? {})
    .filter(([, docs]) => isSecretField(docs))
    .map(([path, docs]) => ({ path, docs }));
}

/**
 * `text` quoted for a message and cut to `max` characters (a 10 KB lock key is not worth echoing whole):
 * `"abc…" (10000 characters)`. Every message that echoes a caller's key or name uses this.
 */
export function quoteForMessage(text: unknown, max = 100): string {
  if (typeof text !== 'string')
    return text === undefined ? 'undefined' : redact(JSON.stringify(text) ?? String(text));
  if (text.length <= max) return redact(JSON.stringify(text));
  return `${redact(JSON.stringify(text.slice(0, max)).slice(0, -1))}…" (${text.length} characters)`;
}

/**
 * A file-path setting for a message. A value without a `/` is not shown: users put the token or the key
 * itself where the path of a file holding it belongs often enough (`CONSUL_HTTP_TOKEN_FILE=<token>`),
 * and `cannot read "<token>"` would echo it.
 */
export function quotePathForMessage(value: string): string {
  if (value.includes('/') && !/\s|-----BEGIN/.test(value)) return quoteForMessage(value, 200);
  return (
    `(a value of ${value.length} characters, not shown: it has no '/', so it may be the secret itself ` +
    'rather than the path of a file holding it)'
  );
}

function valueAtPath(input: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let current: unknown = input;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}
