#!/usr/bin/env node
// The `baton` command. It lives outside dist/ so that npm links it at install time, before the first build.
import { existsSync } from 'node:fs';

const built = new URL('../dist/bin.js', import.meta.url);
if (existsSync(built)) {
  await import(built.href);
} else {
  process.stderr.write(
    'baton: @baton/cli is not built yet (dist/bin.js is missing). Fix: run `npm run build` in the repository root.\n',
  );
  process.exitCode = 1;
}
