import { readFile } from 'node:fs/promises';
import { type BackendContext, ConfigError, defineBackend, quotePathForMessage } from '@baton/core';
import {
  ETCD_SECRET_ENV,
  type EtcdConfig,
  etcdConfigFromEnv,
  etcdConfigSchema,
  etcdFields,
} from './config.js';
import { BACKEND } from './errors.js';
import { EtcdLockProvider, type EtcdLockProviderOptions } from './provider.js';

/**
 * The etcd backend definition: `createLockProvider({ BATON_BACKEND: 'etcd', ETCD_ENDPOINTS: ... })` imports
 * this package and calls `backend.create`.
 */
export const backend = defineBackend<EtcdConfig>({
  name: BACKEND,
  description:
    'etcd v3 leases + transactional locks, fenced by the create revision (ETCD_ENDPOINTS, ETCDCTL_*)',
  schema: etcdConfigSchema,
  fields: etcdFields,
  secretEnv: ETCD_SECRET_ENV,
  fromEnv: (env) => {
    const raw = etcdConfigFromEnv(env);
    // ETCD_ENDPOINTS wins over etcdctl's variable: the latter is then not even validated.
    if (raw.endpoints !== undefined) delete raw.etcdctlEndpoints;
    return raw;
  },
  create: async (config, context) => new EtcdLockProvider(await providerOptions(config, context)),
});

/** Turns a validated config into provider options, reading the TLS files it names. */
export async function providerOptions(
  config: EtcdConfig,
  context: BackendContext = {},
): Promise<EtcdLockProviderOptions> {
  const { caFile, certFile, keyFile, ...rest } = config;
  return {
    ...rest,
    ...(caFile || certFile
      ? {
          tls: {
            ca: caFile ? await readConfigFile('caFile', caFile) : undefined,
            cert: certFile ? await readConfigFile('certFile', certFile) : undefined,
            key: keyFile ? await readConfigFile('keyFile', keyFile) : undefined,
          },
        }
      : {}),
    ...(context.clock ? { clock: context.clock } : {}),
  };
}

async function readConfigFile(field: 'caFile' | 'certFile' | 'keyFile', path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (cause) {
    const env = etcdFields[field]?.env ?? field;
    throw new ConfigError(
      env,
      `Invalid configuration for the 'etcd' backend: ${field} (env ${env}): cannot read ${quotePathForMessage(path)} ` +
        `(${(cause as NodeJS.ErrnoException).code ?? String(cause)}). Fix: set ${env} to ${etcdFields[field]?.hint ?? 'a readable file'}.`,
      { backend: BACKEND, cause },
    );
  }
}
