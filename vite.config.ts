import { resolve } from 'node:path';
import { defineConfig } from 'vite';

// A static multi-page site: the demo (index.html) and the benchmark page (bench.html).
export default defineConfig({
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
