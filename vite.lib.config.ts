// The npm package's library build (npm run build:lib): ESM for browsers, bundlers and Node, one
// file per entry plus shared chunks, WGSL inlined as strings (Vite turns the `?raw` imports into
// them). Entries: the browser entry (src/index.ts), the worker's handler and a ready-made worker,
// and the Node entry (src/node.ts). Node built-ins and the package's dependencies stay imports
// for the app's install and bundler. Declarations come from tsc (tsconfig.lib.json) into dist/types.
import { builtinModules } from 'node:module';
import { resolve } from 'node:path';
import { defineConfig } from 'vite';
import pkg from './package.json' with { type: 'json' };

const packages = [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {})];

/** Node built-ins and the package's dependencies (and their subpaths) stay imports. */
function isExternal(id: string): boolean {
  return id.startsWith('node:') || builtinModules.includes(id) || packages.some((p) => id === p || id.startsWith(`${p}/`));
}

export default defineConfig({
  // Nothing of the demo's public folder (model, samples) goes into the package.
  publicDir: false,
  build: {
    target: 'es2022',
    outDir: 'dist/lib',
    emptyOutDir: true,
    minify: false,
    lib: {
      formats: ['es'],
      entry: {
        index: resolve(import.meta.dirname, 'src/index.ts'),
        worker: resolve(import.meta.dirname, 'src/worker/worker.ts'),
        'engine-worker': resolve(import.meta.dirname, 'src/worker/engine.worker.ts'),
        node: resolve(import.meta.dirname, 'src/node.ts'),
      },
    },
    rollupOptions: { external: isExternal, output: { chunkFileNames: 'chunks/[name]-[hash].js' } },
  },
});
