import {
  durationBounds,
  durationMs,
  type EnvLike,
  type FieldDocs,
  pickEnvFields,
  rememberSecret,
} from '@baton/core';
import { z } from 'zod';

/** Bounds of the Redis backend's durations, shared by the config schema and `openSession`'s options. */
export const redisDurationBounds = {
  ttlMs: durationBounds({ min: 100 }),
  lockDelayMs: durationBounds({ max: 3_600_000 }),
  requestTimeoutMs: durationBounds({ min: 100, max: 600_000 }),
} as const;

/** Where to connect, parsed from a `redis://` or `rediss://` URL. */
export interface RedisEndpoint {
  host: string;
  port: number;
  tls: boolean;
  db: number;
  username: string | undefined;
  password: string | undefined;
}

/**
 * `redis://[user[:password]@]host[:port][/db]` or `rediss://` for TLS, as `REDIS_URL` holds it. The password
 * is remembered as a secret at once.
 */
const urlField = z.string().transform((input, ctx): RedisEndpoint => {
  let url: URL;
  try {
    url = new URL(input.trim());
  } catch {
    ctx.addIssue({
      code: 'custom',
      message: 'expected a URL such as redis://host:6379 or rediss://host:6380',
    });
    return z.NEVER;
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    ctx.addIssue({ code: 'custom', message: `unsupported scheme '${url.protocol}' (use redis or rediss)` });
    return z.NEVER;
  }
  const db = url.pathname === '' || url.pathname === '/' ? 0 : Number(url.pathname.slice(1));
  if (url.hostname === '' || !Number.isInteger(db) || db < 0 || url.hash) {
    ctx.addIssue({
      code: 'custom',
      message: 'expected redis://host[:port][/db], credentials as user:password@ before the host',
    });
    return z.NEVER;
  }
  const password = url.password === '' ? undefined : decodeURIComponent(url.password);
  if (password !== undefined) rememberSecret(password);
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port === '' ? 6379 : Number(url.port),
    tls: url.protocol === 'rediss:',
    db,
    username: url.username === '' ? undefined : decodeURIComponent(url.username),
    password,
  };
});

/**
 * The Redis backend's settings, their defaults and bounds: the one place they are declared. The config
 * ({@link redisConfigSchema}) and {@link RedisLockProvider}'s options both come from it.
 */
export const redisSettingsSchema = z.object({
  /** The Redis key prefix of every key baton writes. Default `baton:`. */
  prefix: z
    .string()
    .min(1)
    .refine(
      (p) => !/[\0*?[\]\\]/.test(p),
      'expected a key prefix without NUL, *, ?, [, ] or \\, such as baton:',
    )
    .default('baton:'),
  /** Default session TTL: 15 s, from 100 ms to 24 h. */
  ttlMs: durationMs(redisDurationBounds.ttlMs).default(15_000),
  /** Default lock-delay after a lost session: 15 s, at most 1 h; 0 disables it. */
  lockDelayMs: durationMs(redisDurationBounds.lockDelayMs).default(15_000),
  /** Deadline of each request: 10 s, from 100 ms to 10 min. */
  requestTimeoutMs: durationMs(redisDurationBounds.requestTimeoutMs).default(10_000),
});

/** The Redis backend's configuration, as validated (see {@link redisFields} for each field's meaning). */
export const redisConfigSchema = z
  .object({
    url: urlField.prefault('redis://127.0.0.1:6379'),
    username: z.string().min(1).optional(),
    // Declared secret in redisFields, so a config error never echoes it back.
    password: z.string({ message: 'expected the password as a string' }).min(1).optional(),
    caFile: z.string().min(1).optional(),
    ...redisSettingsSchema.shape,
  })
  .strict()
  .superRefine((config, ctx) => {
    if (config.url.password !== undefined && config.password !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['password'],
        message: 'the password is given twice: in {url} (user:password@) and in {password}; keep one',
      });
    }
    if (config.url.username !== undefined && config.username !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['username'],
        message: 'the user name is given twice: in {url} (user@) and in {username}; keep one',
      });
    }
    if (config.caFile !== undefined && !config.url.tls) {
      ctx.addIssue({
        code: 'custom',
        path: ['caFile'],
        message: 'a CA file only applies to TLS: use a rediss:// URL in {url}',
      });
    }
  })
  .transform(({ url, username, password, ...rest }) => ({
    ...rest,
    endpoint: { ...url, username: url.username ?? username, password: url.password ?? password },
  }));

/** Validated configuration of the Redis backend. */
export type RedisConfig = z.output<typeof redisConfigSchema>;

/** Each field's environment variable, what a valid value looks like, and which ones are secret. */
export const redisFields: Readonly<Record<string, FieldDocs>> = {
  url: {
    env: 'REDIS_URL',
    hint: 'a URL such as redis://host:6379 (credentials as user:password@ before the host), rediss://host:6380 for TLS, or redis://host:6379/2',
    secret: 'url',
  },
  username: { env: 'REDIS_USERNAME', hint: 'an ACL user name (Redis 6+), or put it in REDIS_URL' },
  password: { env: 'REDIS_PASSWORD', hint: 'the password of the Redis user', secret: true },
  caFile: {
    env: 'BATON_REDIS_CA_FILE',
    hint: "the path of the PEM CA bundle that signed the server's certificate (with a rediss:// URL)",
  },
  prefix: { env: 'BATON_REDIS_PREFIX', hint: 'a key prefix such as baton:' },
  ttlMs: { env: 'BATON_SESSION_TTL', hint: 'a duration from 100ms to 24h such as 15s' },
  lockDelayMs: { env: 'BATON_LOCK_DELAY', hint: 'a duration up to 1h such as 15s, or 0 to disable' },
  requestTimeoutMs: { env: 'BATON_REDIS_TIMEOUT', hint: 'a duration from 100ms to 10m such as 10s' },
};

/** Environment variables that hold secrets: remembered for redaction whatever the schema does with them. */
export const REDIS_SECRET_ENV = ['REDIS_PASSWORD'] as const;

/** Builds the raw config from the environment: `REDIS_URL`, `REDIS_PASSWORD` and baton's own variables. */
export function redisConfigFromEnv(env: EnvLike): Record<string, unknown> {
  return pickEnvFields(env, redisFields);
}
