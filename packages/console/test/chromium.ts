import { existsSync } from 'node:fs';

/** Where Debian's `chromium` package (or `CHROMIUM_PATH`) puts the browser; undefined when none is installed. */
export function findChromium(
  env: Readonly<Record<string, string | undefined>> = process.env,
): string | undefined {
  const candidates = [env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  return candidates.find(
    (path): path is string => typeof path === 'string' && path !== '' && existsSync(path),
  );
}

export const NO_CHROMIUM =
  'browser tests SKIPPED: no Chromium at /usr/bin/chromium (or CHROMIUM_PATH). Fix: apt-get install chromium';
