import {
  boolField,
  durationBounds,
  durationMs,
  type EnvLike,
  type FieldDocs,
  pickEnvFields,
} from '@baton/core';
import { z } from 'zod';
import { isValidPrefix } from './keys.js';

/** Consul's own bounds on session TTLs and lock-delays. */
export const CONSUL_MIN_TTL_MS = 10_000;
export const CONSUL_MAX_TTL_MS = 86_400_000;
export const CONSUL_MAX_LOCK_DELAY_MS = 60_000;
/** The floor when `allowShortTtl` is set (test servers only). */
export const SHORT_TTL_FLOOR_MS = 100;

/**
 * Bounds of the Consul backend's durations, shared by the config schema and the provider's options. The TTL
 * floor here is the one `allowShortTtl` allows; without it, a TTL must also be at least
 * {@link CONSUL_MIN_TTL_MS}.
 */
export const consulDurationBounds = {
  ttlMs: durationBounds({ min: SHORT_TTL_FLOOR_MS, max: CONSUL_MAX_TTL_MS }),
  lockDelayMs: durationBounds({ min: 0, max: CONSUL_MAX_LOCK_DELAY_MS }),
  requestTimeoutMs: durationBounds({ min: 100, max: 600_000 }),
  monitorAfterMs: durationBounds({ min: 0 }),
  watchWaitMs: durationBounds({ min: 100, max: 600_000 }),
  minTtlMs: durationBounds({ min: SHORT_TTL_FLOOR_MS, max: CONSUL_MAX_TTL_MS }),
} as const;

/**
 * Accepts what `CONSUL_HTTP_ADDR` accepts: `host:port`, `host`, or `http(s)://host[:port]`. Yields the
 * origin and whether a scheme was given (without one, `CONSUL_HTTP_SSL` picks https).
 */
const addressField = z.string().transform((input, ctx) => {
  const text = input.trim();
  const schemed = /^[a-z][a-z0-9+.-]*:\/\//i.test(text);
  let url: URL;
  try {
    url = new URL(schemed ? text : `http://${text}`);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'expected host:port or http(s)://host:port' });
    return z.NEVER;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    ctx.addIssue({ code: 'custom', message: `unsupported scheme '${url.protocol}' (use http or https)` });
    return z.NEVER;
  }
  if (url.username !== '' || url.password !== '') {
    ctx.addIssue({
      code: 'custom',
      message:
        'must not carry credentials (user:password@): baton authenticates with an ACL token, sent as X-Consul-Token (set CONSUL_HTTP_TOKEN)',
    });
    return z.NEVER;
  }
  if (url.hostname === '' || (url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
    ctx.addIssue({ code: 'custom', message: 'expected host:port or http(s)://host:port, without a path' });
    return z.NEVER;
  }
  return { origin: url.origin, schemed };
});

/**
 * Why `token` cannot be sent as an HTTP header (a line break or another control character, usually from
 * copying it with the newline; a non-ASCII character), or `undefined`. Never quotes the token.
 */
export function tokenProblem(token: string): string | undefined {
  if (/[\r\n]/.test(token)) return 'contains a line break (copied with its newline?)';
  if (/[^\x20-\x7e]/.test(token))
    return 'contains a control or non-ASCII character, which an HTTP header cannot carry';
  return undefined;
}

const checksField = z
  .union([z.array(z.string().min(1)), z.string()])
  .transform((value) =>
    (Array.isArray(value) ? value : value.split(',')).map((check) => check.trim()).filter(Boolean),
  );

/**
 * The Consul backend's settings, their defaults and bounds: the one place they are declared. The config
 * ({@link consulConfigSchema}) and {@link ConsulLockProvider}'s options both come from it.
 */
export const consulSettingsSchema = z.object({
  /** Datacenter to use instead of the agent's own. */
  datacenter: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, 'expected a datacenter name (letters, digits, - and _)')
    .optional(),
  /** Consul key prefix of every lock. Default `baton/`. */
  prefix: z
    .string()
    .refine(
      isValidPrefix,
      "expected letters, digits, '-', '_', '.', '/', no leading '/', no segment starting with '.'",
    )
    .default('baton/'),
  /** Default session TTL. Default 15 s, from 10 s (Consul's floor; see `allowShortTtl`) to 24 h. */
  ttlMs: durationMs(consulDurationBounds.ttlMs).default(15_000),
  /** Default lock-delay after a session is invalidated while holding locks. Default 15 s, at most 60 s. */
  lockDelayMs: durationMs(consulDurationBounds.lockDelayMs).default(15_000),
  /**
   * What Consul does with held keys when a session is invalidated. Default `delete`: an expired holder's
   * key goes (lock-delay still applies to it), as a released one does, so no key is left behind.
   */
  behavior: z.enum(['release', 'delete']).default('delete'),
  /**
   * Health checks the sessions are bound to. Default `[]`: none, so a lock lives exactly as long as its
   * session keeps renewing. `['serfHealth']` also ends sessions when the agent's node fails.
   */
  checks: checksField.default([]),
  /** Session name shown in Consul when `openSession` gets none. Default `baton`. */
  sessionName: z.string().min(1).max(256).default('baton'),
  /** Deadline of each non-blocking request. Default 10 s, from 100 ms to 10 min. */
  requestTimeoutMs: durationMs(consulDurationBounds.requestTimeoutMs).default(10_000),
  /**
   * A lease held this long gets a blocking-query monitor on its key, so a force-release or deletion is
   * noticed at once. Default: the session's TTL, at most 24 h. Short tasks never pay for it.
   */
  monitorAfterMs: durationMs(consulDurationBounds.monitorAfterMs).optional(),
  /** `?wait` of blocking queries (watch, monitor). Default 60 s, from 100 ms to 10 min. */
  watchWaitMs: durationMs(consulDurationBounds.watchWaitMs).default(60_000),
});

/**
 * {@link ConsulLockProvider}'s settings: the backend's, plus the smallest TTL it accepts (the config sets it
 * from `allowShortTtl`).
 */
export const consulProviderSchema = consulSettingsSchema.extend({
  /** Smallest TTL accepted. Default 10 s (Consul's floor); lower it (to 100 ms) only for test servers. */
  minTtlMs: durationMs(consulDurationBounds.minTtlMs).default(CONSUL_MIN_TTL_MS),
});

/** The raw Consul backend config, as validated (see {@link consulFields} for each field's meaning). */
export const consulConfigSchema = z
  .object({
    address: addressField.default({ origin: 'http://127.0.0.1:8500', schemed: true }),
    https: boolField().default(false),
    // Declared secret in consulFields, so a config error never echoes it back.
    token: z
      .union([z.string(), z.number(), z.null()], { message: 'expected the token as a string' })
      .transform((value, ctx) => {
        if (value === '' || value === null) return undefined;
        const token = String(value);
        const problem = tokenProblem(token);
        if (problem) {
          ctx.addIssue({ code: 'custom', message: problem });
          return z.NEVER;
        }
        return token;
      })
      .optional(),
    tokenFile: z.string().min(1).optional(),
    caFile: z.string().min(1).optional(),
    certFile: z.string().min(1).optional(),
    keyFile: z.string().min(1).optional(),
    tlsServerName: z.string().min(1).optional(),
    ...consulSettingsSchema.shape,
    allowShortTtl: boolField().default(false),
  })
  .strict()
  .superRefine((config, ctx) => {
    if (!config.allowShortTtl && config.ttlMs < CONSUL_MIN_TTL_MS) {
      ctx.addIssue({
        code: 'custom',
        path: ['ttlMs'],
        message:
          "Consul's minimum session TTL is 10s; shorter TTLs (down to 100ms) need {allowShortTtl}=true, " +
          'only against a test server',
      });
    }
    if ((config.certFile === undefined) !== (config.keyFile === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [config.certFile === undefined ? 'certFile' : 'keyFile'],
        message: 'a client certificate needs both certFile and keyFile',
      });
    }
  })
  .transform(({ address, https, ...rest }) => ({
    ...rest,
    address: !address.schemed && https ? address.origin.replace(/^http:/, 'https:') : address.origin,
  }));

/** Validated configuration of the Consul backend. */
export type ConsulConfig = z.output<typeof consulConfigSchema>;

/** Each field's environment variable and what a valid value looks like (used in error messages). */
export const consulFields: Readonly<Record<string, FieldDocs>> = {
  address: {
    env: 'CONSUL_HTTP_ADDR',
    hint: 'host:port or http(s)://host:port, e.g. http://127.0.0.1:8500',
    secret: 'url',
  },
  https: { env: 'CONSUL_HTTP_SSL', hint: 'true or false (https when the address has no scheme)' },
  token: { env: 'CONSUL_HTTP_TOKEN', hint: 'an ACL token (secret id)', secret: true },
  tokenFile: {
    env: 'CONSUL_HTTP_TOKEN_FILE',
    hint: 'the path of a file holding the ACL token (wins over CONSUL_HTTP_TOKEN, as in the consul CLI)',
  },
  caFile: { env: 'CONSUL_CACERT', hint: "the path of the PEM CA bundle that signed the agent's certificate" },
  certFile: {
    env: 'CONSUL_CLIENT_CERT',
    hint: 'the path of a PEM client certificate (with CONSUL_CLIENT_KEY)',
  },
  keyFile: { env: 'CONSUL_CLIENT_KEY', hint: 'the path of the PEM key of CONSUL_CLIENT_CERT' },
  tlsServerName: { env: 'CONSUL_TLS_SERVER_NAME', hint: "the host name in the agent's certificate" },
  datacenter: { env: 'BATON_CONSUL_DATACENTER', hint: 'a datacenter name such as dc1' },
  prefix: { env: 'BATON_CONSUL_PREFIX', hint: 'a key prefix such as baton/' },
  ttlMs: {
    env: 'BATON_SESSION_TTL',
    hint: 'a duration from 10s to 24h such as 15s (from 100ms with {allowShortTtl}=true, test servers only)',
  },
  allowShortTtl: { env: 'BATON_CONSUL_ALLOW_SHORT_TTL', hint: 'true only against a test server' },
  lockDelayMs: { env: 'BATON_LOCK_DELAY', hint: 'a duration up to 60s such as 15s, or 0 to disable' },
  behavior: { env: 'BATON_CONSUL_BEHAVIOR', hint: 'release or delete' },
  checks: { env: 'BATON_CONSUL_CHECKS', hint: 'comma-separated health check ids, e.g. serfHealth, or empty' },
  sessionName: { env: 'BATON_CONSUL_SESSION_NAME', hint: 'a short name shown in Consul' },
  requestTimeoutMs: { env: 'BATON_CONSUL_TIMEOUT', hint: 'a duration from 100ms to 10m such as 10s' },
  monitorAfterMs: {
    env: 'BATON_CONSUL_MONITOR_AFTER',
    hint: 'a duration up to 24h such as 15s (default: the TTL)',
  },
  watchWaitMs: { env: 'BATON_CONSUL_WAIT', hint: 'a duration up to 10m such as 60s' },
};

/** Builds the raw config from the environment: Consul's standard variables plus baton's own. */
export function consulConfigFromEnv(env: EnvLike): Record<string, unknown> {
  return pickEnvFields(env, consulFields);
}
