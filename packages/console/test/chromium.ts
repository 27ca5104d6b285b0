import { existsSync } from 'node:fs';

const DEFAULT_PATHS = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];

/**
 * The browser the tests drive: `CHROMIUM_PATH` when set (only that path), else where Debian's `chromium`
 * package puts it. Undefined when it is not installed.
 */
export function findChromium(
  env: Readonly<Record<string, string | undefined>> = process.env,
): string | undefined {
  const candidates = env.CHROMIUM_PATH ? [env.CHROMIUM_PATH] : DEFAULT_PATHS;
  return candidates.find((path) => existsSync(path));
}

/** The name of the test registered in place of the browser tests when no Chromium is found. */
export function noChromiumMessage(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const where = env.CHROMIUM_PATH
    ? `at CHROMIUM_PATH=${env.CHROMIUM_PATH}`
    : `at ${DEFAULT_PATHS.join(' or ')}`;
  return `browser tests SKIPPED: no Chromium ${where}. Fix: apt-get install chromium (or set CHROMIUM_PATH)`;
}
