// Static checks on an installed copy of a packed @baton package (node_modules/@baton/<name> holds exactly
// what its tarball holds): what a user downloads must be complete, fresh and honest about its dependencies.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative } from 'node:path';

const SPECIFIER =
  /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])((?:@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*(?:\/[^'"\s]*)?)\1/g;
const BUILTINS = new Set(builtinModules);

/**
 * The packages named by the static and literal dynamic imports of one compiled file (`pg`, `@scope/name`);
 * imports shown in comments (TSDoc examples) do not count.
 */
export function importedPackages(text) {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"\\])\/\/.*$/gm, '$1');
  const names = new Set();
  for (const match of code.matchAll(SPECIFIER)) {
    const specifier = match[2];
    if (specifier.startsWith('node:')) continue;
    const parts = specifier.split('/');
    const name = specifier.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
    if (!BUILTINS.has(name)) names.add(name);
  }
  return names;
}

/** Imported packages that the manifest neither is nor declares in `dependencies` or `peerDependencies`. */
export function undeclaredImports(manifest, imported) {
  const declared = new Set([
    manifest.name,
    ...Object.keys(manifest.dependencies ?? {}),
    ...Object.keys(manifest.peerDependencies ?? {}),
  ]);
  return [...imported].filter((name) => !declared.has(name)).sort();
}

/**
 * Compiled files with no TypeScript source next to them in the tarball: output of a source file that was
 * deleted or moved, left in `dist/` by an earlier build (or restored by turbo's cache) and shipped. Only a
 * tarball that ships its sources (for the source maps) can be checked.
 */
export function staleOutputs(files) {
  const sources = new Set(files.filter((file) => /^src\/.*\.ts$/.test(file) && !file.endsWith('.d.ts')));
  if (sources.size === 0) return [];
  return files.filter((file) => {
    const match = /^dist\/(.*)\.(?:js|d\.ts)(?:\.map)?$/.exec(file);
    return match !== null && !sources.has(`src/${match[1]}.ts`);
  });
}

/** Files a user has no use for: tests and fixtures. */
export function testFiles(files) {
  return files.filter((file) =>
    /(^|\/)(test|tests|__tests__|fixtures)\/|\.(test|spec)\.[cm]?[jt]s$/.test(file),
  );
}

/** Every file path that `main`, `types`, `bin` and `exports` name (conditions included). */
export function manifestTargets(manifest) {
  const targets = new Set();
  const add = (value) => {
    if (typeof value === 'string') targets.add(value.replace(/^\.\//, ''));
    else if (value && typeof value === 'object') for (const inner of Object.values(value)) add(inner);
  };
  add(manifest.main);
  add(manifest.types);
  add(manifest.bin);
  add(manifest.exports);
  return [...targets].sort();
}

/** Problems with `exports`: every entry point needs an `import` target and, except the bin entry, `types`. */
export function exportProblems(manifest) {
  const problems = [];
  if (!manifest.exports || typeof manifest.exports !== 'object') return ['no "exports" map'];
  for (const [subpath, target] of Object.entries(manifest.exports)) {
    if (typeof target !== 'object' || target === null) continue;
    if (typeof target.import !== 'string') problems.push(`exports["${subpath}"] has no "import" target`);
    if (subpath !== './bin' && typeof target.types !== 'string')
      problems.push(`exports["${subpath}"] has no "types" target`);
  }
  return problems;
}

function listFiles(root, dir = root) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules') continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(root, path));
    else out.push(relative(root, path).split('\\').join('/'));
  }
  return out;
}

/** Runs every check on the installed package at `dir`; returns the problems found, empty when none. */
export function checkInstalledPackage(dir) {
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const files = listFiles(dir);
  const problems = [];
  for (const target of manifestTargets(manifest))
    if (target !== '' && !existsSync(join(dir, target)))
      problems.push(`names ${target}, which is not in the tarball`);
  problems.push(...exportProblems(manifest));
  if (!files.some((file) => file.startsWith('dist/'))) problems.push('has no dist/ (was it built?)');
  for (const file of staleOutputs(files))
    problems.push(`ships ${file}, which no source file produces (stale build output)`);
  for (const file of testFiles(files)) problems.push(`ships the test file ${file}`);
  const imported = new Set();
  for (const file of files.filter((name) => /^(dist\/.*\.(js|d\.ts)|bin\/.*\.js)$/.test(name)))
    for (const name of importedPackages(readFileSync(join(dir, file), 'utf8'))) imported.add(name);
  for (const name of undeclaredImports(manifest, imported))
    problems.push(`imports ${name}, which is not in its dependencies or peerDependencies`);
  return problems;
}
