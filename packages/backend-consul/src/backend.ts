import { readFile } from 'node:fs/promises';
import {
  type BackendContext,
  ConfigError,
  defineBackend,
  quotePathForMessage,
  rememberSecret,
} from '@baton/core';
import {
  CONSUL_MIN_TTL_MS,
  type ConsulConfig,
  consulConfigFromEnv,
  consulConfigSchema,
  consulFields,
  SHORT_TTL_FLOOR_MS,
  tokenProblem,
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
  create: async (config, context) =>
    new ConsulLockProvider(await providerOptions(config, context.clock, context.warn)),
});

/**
 * Turns a validated config into provider options, reading the token and TLS files it names. As in the
 * consul CLI, a token file wins over a token given directly; `warn` is told when both are set.
 */
export async function providerOptions(
  config: ConsulConfig,
  clock?: ConsulLockProviderOptions['clock'],
  warn?: BackendContext['warn'],
): Promise<ConsulLockProviderOptions> {
  const {
    token: _token,
    tokenFile: _tokenFile,
    caFile,
    certFile,
    keyFile,
    tlsServerName,
    allowShortTtl,
    ...settings
  } = config;
  const { token, tokenSource } = await resolveToken(config, warn);
  const tls: NonNullable<ConsulLockProviderOptions['tls']> = {};
  if (caFile) tls.ca = await readConfigFile('caFile', caFile);
  if (certFile) tls.cert = await readConfigFile('certFile', certFile);
  if (keyFile) tls.key = await readConfigFile('keyFile', keyFile);
  if (tlsServerName) tls.servername = tlsServerName;
  return {
    ...settings,
    minTtlMs: allowShortTtl ? SHORT_TTL_FLOOR_MS : CONSUL_MIN_TTL_MS,
    ...(token ? { token, tokenSource } : {}),
    ...(Object.keys(tls).length > 0 ? { tls } : {}),
    ...(clock ? { clock } : {}),
  };
}

const TOKEN = 'CONSUL_HTTP_TOKEN (token)';
const TOKEN_FILE = 'CONSUL_HTTP_TOKEN_FILE (tokenFile)';

async function resolveToken(
  config: ConsulConfig,
  warn: BackendContext['warn'],
): Promise<{ token: string | undefined; tokenSource: string | undefined }> {
  if (!config.tokenFile) return { token: config.token, tokenSource: config.token ? TOKEN : undefined };
  const path = config.tokenFile;
  const token = (await readConfigFile('tokenFile', path)).trim();
  rememberSecret(token);
  const invalid = (problem: string, fix: string) =>
    new ConfigError(
      'CONSUL_HTTP_TOKEN_FILE',
      `Invalid configuration for the 'consul' backend: ${TOKEN_FILE}: the token file ${quotePathForMessage(path)} ${problem}. Fix: ${fix}.`,
      { backend: BACKEND },
    );
  if (token === '') {
    throw invalid(
      'is empty',
      'write the ACL token into it, or unset CONSUL_HTTP_TOKEN_FILE to connect without a token',
    );
  }
  const problem = tokenProblem(token);
  if (problem) throw invalid(problem, 'make the file hold the token alone, on one line');
  if (config.token !== undefined) {
    warn?.({
      field: 'CONSUL_HTTP_TOKEN_FILE',
      message:
        `both CONSUL_HTTP_TOKEN_FILE (${quotePathForMessage(path)}) and CONSUL_HTTP_TOKEN are set: using the token in ` +
        'CONSUL_HTTP_TOKEN_FILE, as the consul CLI does; CONSUL_HTTP_TOKEN is ignored. Fix: unset one of them.',
    });
  }
  return { token, tokenSource: TOKEN_FILE };
}

async function readConfigFile(field: keyof typeof consulFields, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    const env = consulFields[field]?.env;
    throw new ConfigError(
      env ?? field,
      `Invalid configuration for the 'consul' backend: ${field}${env ? ` (env ${env})` : ''}: cannot read ${quotePathForMessage(path)} ` +
        `(${(cause as NodeJS.ErrnoException).code ?? String(cause)}). Fix: set ${env ?? field} to ${consulFields[field]?.hint ?? 'a readable file'}.`,
      { backend: BACKEND, cause },
    );
  }
}
