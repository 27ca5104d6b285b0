import { InvalidArgumentError } from '@baton/core';

/** Names baton accepts for schemas (and any other identifier it puts into SQL): unquoted-style, ≤ 63 bytes. */
export const IDENTIFIER_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Returns `name` if it is a safe schema name: lowercase letters, digits and underscores, starting with a
 * letter or underscore, at most 63 characters, and not in PostgreSQL's reserved `pg_` namespace. Throws an
 * `INVALID_ARGUMENT` error otherwise. Identifiers are validated *and* quoted; values are always parameters.
 */
export function validateSchemaName(name: unknown): string {
  if (typeof name !== 'string' || !IDENTIFIER_PATTERN.test(name)) {
    throw new InvalidArgumentError(
      `schema name ${JSON.stringify(name)} is not allowed: use 1 to 63 lowercase letters, digits and ` +
        'underscores, starting with a letter or underscore',
      { backend: 'postgres' },
    );
  }
  if (name.startsWith('pg_')) {
    throw new InvalidArgumentError(
      `schema name '${name}' is reserved: the prefix pg_ belongs to PostgreSQL`,
      {
        backend: 'postgres',
      },
    );
  }
  return name;
}

/** Double-quotes an identifier that {@link validateSchemaName} (or the same pattern) accepted. */
export function quoteIdentifier(name: string): string {
  if (!IDENTIFIER_PATTERN.test(name))
    throw new InvalidArgumentError(`refusing to quote identifier '${name}'`);
  return `"${name}"`;
}
