import { quoteForMessage } from '@baton/core';

/** `sslmode` values: libpq's, plus `no-verify` (pg's own: encrypt without checking the certificate). */
export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify'];

/**
 * What is wrong with a `postgres://` connection string that can be told without connecting, or `undefined`
 * when nothing is. Catches what `pg` would otherwise report as "unreachable" (an unparseable URL, a port
 * out of range) or act on wrongly (an unknown `sslmode` silently means "require SSL"). Never quotes the
 * string: it may hold a password.
 */
export function connectionStringProblem(text: string): string | undefined {
  if (text.startsWith('socket:')) return undefined;
  const port = /^[a-z]+:\/\/(?:[^@/?#]*@)?(?:\[[^\]]*\]|[^:/?#]*)(?::([^/?#]*))?/i.exec(text)?.[1];
  if (port !== undefined && /^\d+$/.test(port) && (Number(port) < 1 || Number(port) > 65_535)) {
    return `port ${quoteForMessage(port, 20)} is out of range (1 to 65535)`;
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'it cannot be parsed as a URL (percent-encode special characters in the user name and password: @ → %40, / → %2F, : → %3A)';
  }
  const sslmode = url.searchParams.get('sslmode');
  if (sslmode !== null && !SSL_MODES.includes(sslmode)) {
    return `sslmode ${quoteForMessage(sslmode, 40)} is not an SSL mode (use one of ${SSL_MODES.join(', ')})`;
  }
  return undefined;
}
