import type { EnvLike } from '@baton/core';
import type { PostgresTaskSource } from '@baton/source-postgres';
import { databaseSchema, databaseUrl } from './config.js';
import type { CommandContext } from './context.js';

/**
 * The PostgreSQL settings as an environment: the process environment with `--database-url` / the config
 * file's `database.url` as `DATABASE_URL` and `--schema` / `database.schema` as `BATON_PG_SCHEMA`, so that
 * errors name the variable the user knows.
 */
export function postgresEnv(ctx: CommandContext, overrides: Record<string, string> = {}): EnvLike {
  const env: Record<string, string | undefined> = { ...ctx.env };
  const url = databaseUrl(ctx.globals, ctx.env, ctx.config);
  if (url) env.DATABASE_URL = url;
  const schema = databaseSchema(ctx.globals, ctx.env, ctx.config);
  if (schema) env.BATON_PG_SCHEMA = schema;
  return { ...env, ...overrides };
}

/** Validates the PostgreSQL settings without connecting (throws `CONFIG_INVALID` naming the variable). */
export async function checkPostgresConfig(env: EnvLike): Promise<void> {
  const { parsePostgresConfig } = await import('@baton/source-postgres');
  parsePostgresConfig(env, { fromEnv: true });
}

/** Connects the PostgreSQL task source (migrating first unless `BATON_PG_MIGRATE=false`). */
export async function openSource(
  ctx: CommandContext,
  overrides: Record<string, string> = {},
): Promise<PostgresTaskSource> {
  const env = postgresEnv(ctx, overrides);
  const { createPostgresTaskSource, parsePostgresConfig } = await import('@baton/source-postgres');
  parsePostgresConfig(env, { fromEnv: true });
  return createPostgresTaskSource(env);
}

/** Runs `fn` with a connected source and closes it afterwards. */
export async function withSource<T>(
  ctx: CommandContext,
  fn: (source: PostgresTaskSource) => Promise<T>,
  overrides: Record<string, string> = {},
): Promise<T> {
  const source = await openSource(ctx, overrides);
  try {
    return await fn(source);
  } finally {
    await source.close();
  }
}
