import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';

/** A file the console serves, read once at start. */
export interface Asset {
  body: string;
  type: string;
}

/** The page, its script and style (from `public/`), and uPlot (resolved from node_modules: no CDN). */
export async function loadAssets(): Promise<Record<string, Asset>> {
  const require = createRequire(import.meta.url);
  const publicDir = new URL('../public/', import.meta.url);
  const own = async (name: string) => readFile(new URL(name, publicDir), 'utf8');
  const vendor = async (path: string) => readFile(require.resolve(path), 'utf8');
  const [html, script, style, uplot, uplotCss] = await Promise.all([
    own('index.html'),
    own('console.js'),
    own('console.css'),
    vendor('uplot/dist/uPlot.iife.min.js'),
    vendor('uplot/dist/uPlot.min.css'),
  ]);
  return {
    '/': { body: html, type: 'text/html; charset=utf-8' },
    '/console.js': { body: script, type: 'text/javascript; charset=utf-8' },
    '/console.css': { body: style, type: 'text/css; charset=utf-8' },
    '/vendor/uPlot.iife.min.js': { body: uplot, type: 'text/javascript; charset=utf-8' },
    '/vendor/uPlot.min.css': { body: uplotCss, type: 'text/css; charset=utf-8' },
  };
}
