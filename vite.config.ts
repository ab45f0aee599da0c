import { readdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { defineConfig, type Plugin } from 'vite';

/** Every file under `dir`, as paths relative to it with forward slashes. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)).split('\\').join('/'));
}

/**
 * Writes precache.json, the list of every file the build emits plus the public folder (model,
 * samples, Fashion-MNIST): the service worker (public/sw.js) caches them all on install, so the
 * demo works offline after the first visit.
 */
function precacheManifest(): Plugin {
  return {
    name: 'precache-manifest',
    apply: 'build',
    generateBundle(_, bundle) {
      const files = [...Object.keys(bundle), ...filesUnder(resolve(import.meta.dirname, 'public')).filter((f) => f !== 'sw.js')];
      this.emitFile({ type: 'asset', fileName: 'precache.json', source: JSON.stringify(files.sort(), null, 1) });
    },
  };
}

// A static multi-page site: the demo (index.html) and the benchmark page (bench.html).
export default defineConfig({
  plugins: [precacheManifest()],
  build: {
    target: 'es2022',
    rollupOptions: {
      input: {
        main: resolve(import.meta.dirname, 'index.html'),
        bench: resolve(import.meta.dirname, 'bench.html'),
      },
    },
  },
  worker: { format: 'es' },
});
