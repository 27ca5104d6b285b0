import { readFile } from 'node:fs/promises';
import { ConfigError, defineBackend } from '@baton/core';
import {
  CONSUL_MIN_TTL_MS,
  type ConsulConfig,
  consulConfigFromEnv,
  consulConfigSchema,
  consulFields,
  SHORT_TTL_FLOOR_MS,
} from './config.js';
import { BACKEND } from './errors.js';
import { ConsulLockProvider, type ConsulLockProviderOptions } from './provider.js';

/**
 * The Consul backend definition: `createLockProvider({ BATON_BACKEND: 'consul', CONSUL_HTTP_ADDR: ... })`
 * imports this package and calls `backend.create`.
 */
export const backend = defineBackend<ConsulConfig>({
  name: BACKEND,
  description: 'Consul sessions + KV locks, fenced by the Raft index (CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN)',
  schema: consulConfigSchema,
  fields: consulFields,
  fromEnv: consulConfigFromEnv,
  create: async (config, context) => new ConsulLockProvider(await providerOptions(config, context.clock)),
});

/** Turns a validated config into provider options, reading the token and TLS files it names. */
export async function providerOptions(
  config: ConsulConfig,
  clock?: ConsulLockProviderOptions['clock'],
): Promise<ConsulLockProviderOptions> {
  const token =
    config.token ??
    (config.tokenFile ? (await readConfigFile('tokenFile', config.tokenFile)).trim() : undefined);
  const tls: NonNullable<ConsulLockProviderOptions['tls']> = {};
  if (config.caFile) tls.ca = await readConfigFile('caFile', config.caFile);
  if (config.certFile) tls.cert = await readConfigFile('certFile', config.certFile);
  if (config.keyFile) tls.key = await readConfigFile('keyFile', config.keyFile);
  if (config.tlsServerName) tls.servername = config.tlsServerName;
  return {
    address: config.address,
    ...(token ? { token } : {}),
    ...(Object.keys(tls).length > 0 ? { tls } : {}),
    ...(config.datacenter ? { datacenter: config.datacenter } : {}),
    prefix: config.prefix,
    ttlMs: config.ttlMs,
    minTtlMs: config.allowShortTtl ? SHORT_TTL_FLOOR_MS : CONSUL_MIN_TTL_MS,
    lockDelayMs: config.lockDelayMs,
    behavior: config.behavior,
    checks: config.checks,
    sessionName: config.sessionName,
    requestTimeoutMs: config.requestTimeoutMs,
    ...(config.monitorAfterMs !== undefined ? { monitorAfterMs: config.monitorAfterMs } : {}),
    watchWaitMs: config.watchWaitMs,
    ...(clock ? { clock } : {}),
  };
}

async function readConfigFile(field: keyof typeof consulFields, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    const env = consulFields[field]?.env;
    throw new ConfigError(
      env ?? field,
      `Invalid configuration for the 'consul' backend: ${field}${env ? ` (env ${env})` : ''}: cannot read ${JSON.stringify(path)} ` +
        `(${(cause as NodeJS.ErrnoException).code ?? String(cause)}). Fix: set ${env ?? field} to ${consulFields[field]?.hint ?? 'a readable file'}.`,
      { backend: BACKEND, cause },
    );
  }
}
