import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkInstalledPackage,
  exportProblems,
  importedPackages,
  staleOutputs,
  testFiles,
  undeclaredImports,
} from '../../scripts/pack/package-checks.mjs';

// The static half of `npm run test:pack`: a sound package passes, and each planted packaging fault is named.

const MANIFEST = {
  name: '@baton/sample',
  version: '0.1.0',
  type: 'module',
  exports: { '.': { types: './dist/index.d.ts', import: './dist/index.js' } },
  main: './dist/index.js',
  types: './dist/index.d.ts',
  bin: { sample: './bin/sample.js' },
  dependencies: { pg: '^8.0.0' },
  peerDependencies: { '@baton/core': '*' },
};

const SOUND: Record<string, string> = {
  'src/index.ts': "export * from './run.js';\n",
  'src/run.ts': "import pg from 'pg';\n",
  'dist/index.js': "export * from './run.js';\n",
  'dist/index.d.ts': "export * from './run.js';\n",
  'dist/run.js':
    "import pg from 'pg';\nimport { Worker } from '@baton/core';\nimport { readFile } from 'node:fs';\n",
  'dist/run.d.ts': "/** import { it } from 'vitest'; */\nexport {};\n",
  'bin/sample.js': "#!/usr/bin/env node\nawait import('../dist/index.js');\n",
};

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function installed(files: Record<string, string>, manifest: object = MANIFEST): string {
  const dir = mkdtempSync(join(tmpdir(), 'baton-pack-checks-'));
  dirs.push(dir);
  for (const [path, text] of Object.entries({ ...files, 'package.json': JSON.stringify(manifest) })) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

describe('pack checks', () => {
  it('find no problem in a sound package', () => {
    expect(checkInstalledPackage(installed(SOUND))).toEqual([]);
  });

  it('name output left in dist/ by a moved source file', () => {
    const dir = installed({ ...SOUND, 'dist/demo/run.js': "import { x } from '@baton/testkit';\n" });
    expect(checkInstalledPackage(dir)).toEqual([
      'ships dist/demo/run.js, which no source file produces (stale build output)',
      'imports @baton/testkit, which is not in its dependencies or peerDependencies',
    ]);
  });

  it('name an import of a package the manifest does not declare', () => {
    const { dependencies: _dropped, ...manifest } = MANIFEST;
    expect(checkInstalledPackage(installed(SOUND, manifest))).toEqual([
      'imports pg, which is not in its dependencies or peerDependencies',
    ]);
  });

  it('name an entry point missing from the tarball', () => {
    const { 'bin/sample.js': _bin, ...files } = SOUND;
    expect(checkInstalledPackage(installed(files))).toEqual([
      'names bin/sample.js, which is not in the tarball',
    ]);
  });

  it('name a shipped test file and a package without dist/', () => {
    expect(testFiles(['dist/a.js', 'src/a.test.ts', 'test/b.ts', 'src/latest.ts'])).toEqual([
      'src/a.test.ts',
      'test/b.ts',
    ]);
    expect(checkInstalledPackage(installed({ 'src/index.ts': '' }))).toContain(
      'has no dist/ (was it built?)',
    );
  });

  it('require types and import targets for every entry point but the bin', () => {
    expect(
      exportProblems({
        exports: { '.': { import: './dist/index.js' }, './bin': { import: './dist/bin.js' } },
      }),
    ).toEqual(['exports["."] has no "types" target']);
    expect(exportProblems({})).toEqual(['no "exports" map']);
  });

  it('read static, dynamic, re-export and side-effect imports, not comments, builtins or messages', () => {
    const text = [
      "import a from 'alpha';",
      "export { b } from '@scope/beta/sub';",
      "const c = await import('gamma');",
      "import 'delta';",
      "import fs from 'fs';",
      "import { x } from './local.js';",
      "// import z from 'commented';",
      'throw new Error("from \'no such metric\'");',
    ].join('\n');
    expect([...importedPackages(text)].sort()).toEqual(['@scope/beta', 'alpha', 'delta', 'gamma']);
    expect(undeclaredImports(MANIFEST, new Set(['pg', '@baton/core', '@baton/sample', 'zod']))).toEqual([
      'zod',
    ]);
    expect(staleOutputs(['src/a.ts', 'dist/a.js', 'dist/a.d.ts.map', 'dist/b.js'])).toEqual(['dist/b.js']);
    expect(staleOutputs(['dist/a.js', 'dist/b.js'])).toEqual([]);
  });
});
