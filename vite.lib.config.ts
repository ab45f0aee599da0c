// The library build (npm run build:lib): ESM for the browser entry (src/index.ts) and the Node
// entry (src/node.ts) into dist/lib, WGSL inlined as strings (Vite turns `?raw` imports into them),
// and every dependency left to the consumer's install. Declarations come from tsconfig.lib.json.
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
  publicDir: false,
  build: {
    outDir: 'dist/lib',
    emptyOutDir: true,
    target: 'es2022',
    minify: false,
    sourcemap: true,
    lib: {
      entry: { index: resolve(import.meta.dirname, 'src/index.ts'), node: resolve(import.meta.dirname, 'src/node.ts') },
      formats: ['es'],
    },
    rollupOptions: { external: isExternal },
  },
});
