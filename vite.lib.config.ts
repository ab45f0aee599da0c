// The npm package's library build: ESM for browsers and bundlers, one file per entry plus shared
// chunks, WGSL inlined as strings (Vite turns the `?raw` imports into them), dependencies left as
// imports for the app's bundler. Declarations come from tsc (tsconfig.lib.json) into dist/types.
import { resolve } from 'node:path';
import { defineConfig } from 'vite';

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
      },
    },
    rollupOptions: { external: ['comlink'], output: { chunkFileNames: 'chunks/[name]-[hash].js' } },
  },
});
