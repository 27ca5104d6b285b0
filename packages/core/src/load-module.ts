import { stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from './errors.js';
import { redact } from './redact.js';

/**
 * Imports `specifier` (a package name, a `file:` URL or an absolute path) for the setting `field`. When the
 * import fails, the `ConfigError` tells the two cases apart, since their fixes differ:
 *
 * - the module itself is not there (no such file, package not installed): say so, and for a package
 *   suggest `npm install`;
 * - the module is there but failed to load (a syntax error, an import of its own that is missing, an
 *   exception at top level): show that error, and suggest nothing to install.
 */
export async function loadModule(
  specifier: string,
  context: { field: string; what: string },
): Promise<Record<string, unknown>> {
  try {
    return (await import(specifier)) as Record<string, unknown>;
  } catch (cause) {
    const { field, what } = context;
    const missing = await isMissing(specifier);
    const message =
      missing === 'file'
        ? `${field}: ${what} needs the module ${specifier}, and there is no such file. ` +
          `Fix: point ${field} at the module's path or package name.`
        : missing === 'package'
          ? `${field}: ${what} needs the package '${specifier}', which is not installed. Fix: npm install ${specifier}.`
          : `${field}: ${what}: the module ${specifier} was found but could not be loaded: ${loadError(cause)}`;
    throw new ConfigError(field, redact(message), { cause });
  }
}

/** Whether the specifier itself is absent (rather than present and failing to load). */
async function isMissing(specifier: string): Promise<'file' | 'package' | undefined> {
  const path = specifier.startsWith('file:')
    ? safeFileURLToPath(specifier)
    : isAbsolute(specifier)
      ? specifier
      : undefined;
  if (path !== undefined) return (await stat(path).catch(() => undefined)) ? undefined : 'file';
  if (/^\.\.?\//.test(specifier)) return undefined;
  try {
    createRequire(import.meta.url).resolve(specifier);
    return undefined;
  } catch (error) {
    // Present but ESM-only (no `require` export), or resolvable with another condition: not missing.
    return (error as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' ? 'package' : undefined;
  }
}

function safeFileURLToPath(url: string): string | undefined {
  try {
    return fileURLToPath(url);
  } catch {
    return undefined;
  }
}

/** The load error as the user would want to read it: `SyntaxError: Unexpected token ','`. */
function loadError(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause);
  return `${cause.name === 'Error' ? '' : `${cause.name}: `}${cause.message}`;
}
