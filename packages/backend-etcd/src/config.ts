import {
  durationBounds,
  durationMs,
  type EnvLike,
  type FieldDocs,
  pickEnvFields,
  rememberSecret,
} from '@baton/core';
import { z } from 'zod';

/** The smallest lease TTL etcd grants: whole seconds, at least one. */
export const ETCD_MIN_TTL_MS = 1_000;

/** Bounds of the etcd backend's durations, shared by the config schema and `openSession`'s options. */
export const etcdDurationBounds = {
  ttlMs: durationBounds({ min: ETCD_MIN_TTL_MS }),
  lockDelayMs: durationBounds({ max: 3_600_000 }),
  requestTimeoutMs: durationBounds({ min: 100, max: 600_000 }),
} as const;

/**
 * A comma-separated list (or array) of etcd client URLs, as `ETCDCTL_ENDPOINTS` takes them: `host:port` or
 * `http(s)://host:port`. Yields origins; without a scheme, `http://`.
 */
const endpointsField = z.union([z.string(), z.array(z.string())]).transform((input, ctx) => {
  const items = (Array.isArray(input) ? input : input.split(',')).map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) {
    ctx.addIssue({ code: 'custom', message: 'expected at least one endpoint' });
    return z.NEVER;
  }
  const origins: string[] = [];
  for (const item of items) {
    let url: URL;
    try {
      url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(item) ? item : `http://${item}`);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'expected host:port or http(s)://host:port, comma-separated' });
      return z.NEVER;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      ctx.addIssue({ code: 'custom', message: `unsupported scheme '${url.protocol}' (use http or https)` });
      return z.NEVER;
    }
    if (url.username !== '' || url.password !== '') {
      ctx.addIssue({
        code: 'custom',
        message: 'must not carry credentials (user:password@): set ETCDCTL_USER and ETCDCTL_PASSWORD instead',
      });
      return z.NEVER;
    }
    if (url.hostname === '' || (url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
      ctx.addIssue({ code: 'custom', message: 'expected host:port or http(s)://host:port, without a path' });
      return z.NEVER;
    }
    origins.push(url.origin);
  }
  return origins;
});

/** etcd's `--user` form: `name` or `name:password`. The password part is remembered as a secret at once. */
const userField = z
  .string()
  .min(1)
  .transform((value) => {
    const colon = value.indexOf(':');
    if (colon < 0) return { name: value, password: undefined };
    const password = value.slice(colon + 1);
    rememberSecret(password);
    return { name: value.slice(0, colon), password: password === '' ? undefined : password };
  });

/**
 * The etcd backend's settings, their defaults and bounds: the one place they are declared. The config
 * ({@link etcdConfigSchema}) and {@link EtcdLockProvider}'s options both come from it.
 */
export const etcdSettingsSchema = z.object({
  /** The etcd key prefix of every lock. Default `baton/`. */
  prefix: z
    .string()
    .min(1)
    .refine((p) => !p.includes('\0'), 'expected a key prefix without NUL, such as baton/')
    .default('baton/'),
  /** Default session TTL: 15 s, from 1 s to 24 h (etcd leases count whole seconds: rounded up). */
  ttlMs: durationMs(etcdDurationBounds.ttlMs).default(15_000),
  /** Default lock-delay after a lost session: 15 s, at most 1 h; 0 disables it. */
  lockDelayMs: durationMs(etcdDurationBounds.lockDelayMs).default(15_000),
  /** Deadline of each request: 10 s, from 100 ms to 10 min. */
  requestTimeoutMs: durationMs(etcdDurationBounds.requestTimeoutMs).default(10_000),
});

/** The etcd backend's configuration, as validated (see {@link etcdFields} for each field's meaning). */
export const etcdConfigSchema = z
  .object({
    endpoints: endpointsField.optional(),
    etcdctlEndpoints: endpointsField.optional(),
    user: userField.optional(),
    // Declared secret in etcdFields, so a config error never echoes it back.
    password: z.string({ message: 'expected the password as a string' }).min(1).optional(),
    caFile: z.string().min(1).optional(),
    certFile: z.string().min(1).optional(),
    keyFile: z.string().min(1).optional(),
    ...etcdSettingsSchema.shape,
  })
  .strict()
  .superRefine((config, ctx) => {
    if ((config.certFile === undefined) !== (config.keyFile === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [config.certFile === undefined ? 'certFile' : 'keyFile'],
        message: 'a client certificate needs both {certFile} and {keyFile}',
      });
    }
    if (config.password !== undefined && config.user === undefined) {
      ctx.addIssue({ code: 'custom', path: ['user'], message: 'a password needs a user name' });
    }
    if (config.user?.password !== undefined && config.password !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['password'],
        message: 'the password is given twice: in {user} (name:password) and in {password}; keep one',
      });
    }
  })
  .transform(({ endpoints, etcdctlEndpoints, user, password, ...rest }) => ({
    ...rest,
    endpoints: endpoints ?? etcdctlEndpoints ?? ['http://127.0.0.1:2379'],
    ...(user ? { auth: { username: user.name, password: user.password ?? password ?? '' } } : {}),
  }));

/** Validated configuration of the etcd backend. */
export type EtcdConfig = z.output<typeof etcdConfigSchema>;

/** Each field's environment variable, what a valid value looks like, and which ones are secret. */
export const etcdFields: Readonly<Record<string, FieldDocs>> = {
  endpoints: {
    env: 'ETCD_ENDPOINTS',
    hint: 'comma-separated client URLs such as http://10.0.0.1:2379,http://10.0.0.2:2379',
    secret: 'url',
  },
  etcdctlEndpoints: {
    env: 'ETCDCTL_ENDPOINTS',
    hint: 'comma-separated client URLs such as http://10.0.0.1:2379 (ETCD_ENDPOINTS wins when both are set)',
    secret: 'url',
  },
  // The user may carry the password (`name:password`, as etcdctl --user accepts), so it is never shown.
  user: {
    env: 'ETCDCTL_USER',
    hint: 'a user name, or name:password as etcdctl --user takes it',
    secret: true,
  },
  password: { env: 'ETCDCTL_PASSWORD', hint: 'the password of ETCDCTL_USER', secret: true },
  caFile: {
    env: 'ETCDCTL_CACERT',
    hint: "the path of the PEM CA bundle that signed the servers' certificates",
  },
  certFile: { env: 'ETCDCTL_CERT', hint: 'the path of a PEM client certificate (with ETCDCTL_KEY)' },
  keyFile: { env: 'ETCDCTL_KEY', hint: 'the path of the PEM key of ETCDCTL_CERT' },
  prefix: { env: 'BATON_ETCD_PREFIX', hint: 'a key prefix such as baton/' },
  ttlMs: {
    env: 'BATON_SESSION_TTL',
    hint: 'a duration from 1s to 24h such as 15s (etcd leases count whole seconds: rounded up)',
  },
  lockDelayMs: { env: 'BATON_LOCK_DELAY', hint: 'a duration up to 1h such as 15s, or 0 to disable' },
  requestTimeoutMs: { env: 'BATON_ETCD_TIMEOUT', hint: 'a duration from 100ms to 10m such as 10s' },
};

/** Environment variables that hold secrets: remembered for redaction whatever the schema does with them. */
export const ETCD_SECRET_ENV = ['ETCDCTL_USER', 'ETCDCTL_PASSWORD'] as const;

/** Builds the raw config from the environment: etcd's and etcdctl's standard variables plus baton's own. */
export function etcdConfigFromEnv(env: EnvLike): Record<string, unknown> {
  return pickEnvFields(env, etcdFields);
}
