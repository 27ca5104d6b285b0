// Loading the built workspace packages (dist/) and reporting their versions.
//
// Benchmarks always run against `dist/`, as users would. `importWorkspace('@baton/test-servers/dynalite')` is a
// plain `import()`; when the workspace link is missing from node_modules (an install that predates the
// package), it falls back to the package's own `exports` map in packages/<name>, so a stale install does not
// block the benchmarks. A package that is not built yet is reported as such (`NotBuiltError`).

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const benchDir = join(dirname(fileURLToPath(import.meta.url)), '..');
export const repoRoot = join(benchDir, '..');

/** A benchmark needs something that is not there (a package not built yet, a server not installed). */
export class UnavailableError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = 'UnavailableError';
  }
}

function splitSpecifier(specifier) {
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
  const subpath = `.${specifier.slice(name.length)}`;
  return { name, subpath: subpath === '.' ? '.' : subpath };
}

function workspaceEntry(specifier) {
  const { name, subpath } = splitSpecifier(specifier);
  if (!name.startsWith('@baton/')) return undefined;
  const dir = join(repoRoot, 'packages', name.slice('@baton/'.length));
  const manifestPath = join(dir, 'package.json');
  if (!existsSync(manifestPath)) return undefined;
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  const entry = manifest.exports?.[subpath];
  const target = typeof entry === 'string' ? entry : (entry?.import ?? entry?.default);
  return target ? join(dir, target) : undefined;
}

/**
 * Imports a package the way a user would (node resolution, `import` condition → dist). Throws
 * {@link UnavailableError} when a workspace package's dist file does not exist or does not export `names`.
 */
export async function importWorkspace(specifier, names = []) {
  let mod;
  try {
    mod = await import(specifier);
  } catch (error) {
    if (error?.code !== 'ERR_MODULE_NOT_FOUND' && error?.code !== 'ERR_PACKAGE_PATH_NOT_EXPORTED')
      throw error;
    const file = workspaceEntry(specifier);
    if (!file) throw error;
    if (!existsSync(file)) {
      throw new UnavailableError(`${specifier} is not built (${file} missing): run npx turbo run build`, {
        cause: error,
      });
    }
    mod = await import(pathToFileURL(file).href);
  }
  const missing = names.filter((n) => mod[n] === undefined);
  if (missing.length) {
    throw new UnavailableError(
      `${specifier} does not export ${missing.join(', ')} (yet): is it built and finished?`,
    );
  }
  return mod;
}

const require = createRequire(join(benchDir, 'package.json'));

/** Version of an installed npm package as seen from bench/, or undefined. */
export function installedVersion(name) {
  for (const base of [join(benchDir, 'node_modules'), join(repoRoot, 'node_modules')]) {
    const path = join(base, name, 'package.json');
    if (existsSync(path)) return JSON.parse(readFileSync(path, 'utf8')).version;
  }
  try {
    return require(`${name}/package.json`).version;
  } catch {
    return undefined;
  }
}

/** Versions of the baton packages, the clients and the peer libraries the benchmarks use. */
export function packageVersions() {
  const out = {};
  for (const pkg of ['core', 'testkit', 'backend-consul', 'backend-dynamodb', 'source-postgres']) {
    const path = join(repoRoot, 'packages', pkg, 'package.json');
    if (existsSync(path)) out[`@baton/${pkg}`] = JSON.parse(readFileSync(path, 'utf8')).version;
  }
  for (const name of [
    'consul',
    '@aws-sdk/client-dynamodb',
    'pg',
    'dynalite',
    'aws-sdk',
    'dynamodb-lock-client',
    'graphile-worker',
    'pg-boss',
  ]) {
    out[name] = installedVersion(name) ?? null;
  }
  return out;
}

/** Installed versions of the peer job queues (graphile-worker, pg-boss). */
export function peerVersions() {
  return {
    'graphile-worker': installedVersion('graphile-worker') ?? null,
    'pg-boss': installedVersion('pg-boss') ?? null,
  };
}
