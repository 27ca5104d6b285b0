import type { Clock } from './clock.js';
import { type ConfigSchema, type EnvLike, type FieldDocs, parseConfig } from './config.js';
import { ConfigError } from './errors.js';
import { loadModule } from './load-module.js';
import type { LockProvider } from './lock.js';
import { redact, rememberSecret } from './redact.js';

/** Something in the configuration that works but is probably not what the user meant. */
export interface ConfigWarning {
  /** The setting at fault, as the user wrote it (env var or config key). */
  readonly field: string;
  /** What was noticed and what baton does about it; never holds a secret. */
  readonly message: string;
}

/** Passed to {@link BackendDefinition.create}. */
export interface BackendContext {
  /** Clock to measure time with (tests inject one). */
  clock?: Clock | undefined;
  /** Reports a {@link ConfigWarning} (both `CONSUL_HTTP_TOKEN` and `CONSUL_HTTP_TOKEN_FILE` set, say). */
  warn?: ((warning: ConfigWarning) => void) | undefined;
}

/**
 * A lock backend as a plug-in: a name, a config schema, how environment variables map onto the config, and
 * a factory. A custom backend is a package whose `backend` export is one of these and that passes the
 * testkit's `lockProviderSuite`.
 */
export interface BackendDefinition<C = unknown> {
  /** Name users put in `BATON_BACKEND` / `backend`. Lowercase letters, digits and dashes. */
  readonly name: string;
  /** One line for `--help` and error messages. */
  readonly description: string;
  /** Validates the config (after `fromEnv` for environment input) and applies defaults. */
  readonly schema: ConfigSchema<C>;
  /**
   * Field documentation: the env var behind each field, what a valid value looks like, and whether it is a
   * secret (`secret: true`, or `'url'` for URLs that may carry credentials) so that no message shows it.
   */
  readonly fields?: Readonly<Record<string, FieldDocs>>;
  /**
   * Environment variables that hold secrets the backend's client reads by itself, outside `fromEnv` and
   * the schema (`AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, ...). Their values are remembered as secrets
   * (see `redact()`) when the backend is configured from the environment.
   */
  readonly secretEnv?: readonly string[];
  /** Builds the raw config from environment variables (values stay strings; the schema coerces). */
  fromEnv(env: EnvLike): Record<string, unknown>;
  /** Creates a provider from a validated config. Should fail fast on unreachable servers only if cheap. */
  create(config: C, context: BackendContext): Promise<LockProvider> | LockProvider;
}

/** Identity helper that infers `C` from the schema. */
export function defineBackend<C>(definition: BackendDefinition<C>): BackendDefinition<C> {
  if (!/^[a-z][a-z0-9-]*$/.test(definition.name)) {
    throw new TypeError(`backend name '${definition.name}' must be lowercase letters, digits and dashes`);
  }
  return definition;
}

const registry = new Map<string, BackendDefinition<unknown>>();

/** Package that provides each first-party backend, imported on first use. */
const firstParty: Readonly<Record<string, string>> = {
  consul: '@baton/backend-consul',
  dynamodb: '@baton/backend-dynamodb',
  etcd: '@baton/backend-etcd',
  postgres: '@baton/backend-postgres',
  redis: '@baton/backend-redis',
};

/** Registers a backend under its name. Re-registering the same name throws unless `replace` is set. */
export function registerBackend<C>(
  definition: BackendDefinition<C>,
  options: { replace?: boolean } = {},
): void {
  const existing = registry.get(definition.name);
  if (existing && existing !== definition && !options.replace) {
    throw new ConfigError('backend', `a backend named '${definition.name}' is already registered`);
  }
  registry.set(definition.name, definition as BackendDefinition<unknown>);
}

/** Names of the registered backends plus the first-party ones that can be loaded on demand. */
export function availableBackends(): string[] {
  return [...new Set([...registry.keys(), ...Object.keys(firstParty)])].sort();
}

/** Looks a backend up by name, importing a first-party package or `module` when it is not registered yet. */
export async function resolveBackend(name: string, module?: string): Promise<BackendDefinition<unknown>> {
  const known = registry.get(name);
  if (known) return known;
  const specifier = module ?? firstParty[name];
  if (!specifier) {
    throw new ConfigError(
      'BATON_BACKEND',
      `BATON_BACKEND: unknown backend '${name}'. Fix: use one of ${availableBackends().join(', ')}, ` +
        'register your own with registerBackend(), or set BATON_BACKEND_MODULE to a package that exports `backend`.',
    );
  }
  const loaded = (await loadModule(specifier, {
    field: module ? 'BATON_BACKEND_MODULE' : 'BATON_BACKEND',
    what: `backend '${name}'`,
  })) as { backend?: BackendDefinition<unknown> };
  const definition = loaded.backend;
  if (!definition || typeof definition.create !== 'function' || definition.name !== name) {
    throw new ConfigError(
      module ? 'BATON_BACKEND_MODULE' : 'BATON_BACKEND',
      `'${specifier}' does not export a backend definition named '${name}' as \`backend\`.`,
    );
  }
  registerBackend(definition, { replace: true });
  return definition;
}

/** A config object: `backend` picks the backend; the other fields belong to its schema. */
export interface LockProviderConfig {
  backend: string;
  /** Package to import a custom backend from when it is not registered. */
  module?: string;
  [field: string]: unknown;
}

/** Options for {@link createLockProvider}. */
export interface CreateLockProviderOptions {
  clock?: Clock;
  /**
   * Receives configuration warnings: a setting that is ignored (`BATON_BACKEND_MODULE` with the memory
   * backend) or overridden by another. Default: `process.emitWarning` (Node prints it on stderr).
   */
  onWarning?: (warning: ConfigWarning) => void;
}

/**
 * Creates the lock provider that configuration asks for, so that swapping backends changes no code.
 *
 * - Given a {@link LockProviderConfig} (an object with `backend`), validates the rest against that backend's
 *   schema.
 * - Given an environment (default `process.env`), reads `BATON_BACKEND` (default `memory`) and the backend's
 *   variables (`CONSUL_HTTP_ADDR`, `AWS_REGION`, ...).
 *
 * Bad input throws a `ConfigError` whose `field` and message name the setting and the fix.
 */
export async function createLockProvider(
  input: LockProviderConfig | EnvLike = process.env,
  options: CreateLockProviderOptions = {},
): Promise<LockProvider> {
  const fromEnv = !isConfigObject(input);
  let name: string;
  let module: string | undefined;
  let raw: Record<string, unknown>;
  if (isConfigObject(input)) {
    if (typeof input.backend !== 'string' || input.backend === '') {
      throw new ConfigError(
        'backend',
        "config field 'backend' must be a backend name such as 'memory' or 'consul'",
      );
    }
    const { backend, module: mod, ...rest } = input;
    name = backend;
    module = typeof mod === 'string' ? mod : undefined;
    raw = rest;
  } else {
    const env = input as EnvLike;
    name = (env.BATON_BACKEND ?? 'memory').trim() || 'memory';
    module = env.BATON_BACKEND_MODULE || undefined;
    raw = {};
  }
  const warn = options.onWarning ?? emitWarning;
  if (module !== undefined && name === 'memory') {
    const field = fromEnv ? 'BATON_BACKEND_MODULE' : 'module';
    warn({
      field,
      message: redact(
        `${field} is set (${module}) but the backend is memory${fromEnv && !(input as EnvLike).BATON_BACKEND ? ' (BATON_BACKEND is unset)' : ''}, ` +
          `so the module is not loaded. Fix: set ${fromEnv ? 'BATON_BACKEND' : 'backend'} to the name of the backend it exports, or unset ${field}.`,
      ),
    });
    module = undefined;
  }
  const definition = await resolveBackend(name, module);
  if (fromEnv) {
    for (const variable of definition.secretEnv ?? []) rememberSecret((input as EnvLike)[variable]);
    raw = definition.fromEnv(input as EnvLike);
  }
  const config = parseConfig(definition.schema, raw, {
    backend: name,
    fromEnv,
    ...(definition.fields ? { fields: definition.fields } : {}),
  });
  return definition.create(config, { clock: options.clock, warn });
}

function emitWarning(warning: ConfigWarning): void {
  process.emitWarning(warning.message, { code: 'BATON_CONFIG', detail: `setting: ${warning.field}` });
}

function isConfigObject(input: LockProviderConfig | EnvLike): input is LockProviderConfig {
  return typeof input === 'object' && input !== null && 'backend' in input && !('BATON_BACKEND' in input);
}
