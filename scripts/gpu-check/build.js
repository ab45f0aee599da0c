// Builds the GPU check's Node steps (scripts/gpu-check/check.ts) into one ES module, the WGSL and
// every dependency inlined, so only Node and Dawn's `webgpu` package travel beside it.
// Usage: node scripts/gpu-check/build.js OUT_DIR (writes OUT_DIR/check.mjs).
import { builtinModules } from 'node:module';
import { resolve } from 'node:path';
import { build } from 'vite';

const root = resolve(import.meta.dirname, '../..');
const outDir = resolve(process.argv[2] ?? 'gpu-check/carry');

await build({
  root,
  configFile: false,
  logLevel: 'warn',
  publicDir: false,
  ssr: { noExternal: true, target: 'node' },
  build: {
    ssr: resolve(root, 'scripts/gpu-check/check.ts'),
    outDir,
    emptyOutDir: false,
    target: 'node20',
    minify: true,
    rollupOptions: {
      // Dawn is a native addon: it travels as a package and is found in node_modules beside check.mjs.
      external: (id) => id === 'webgpu' || id.startsWith('node:') || builtinModules.includes(id),
      output: { format: 'es', entryFileNames: 'check.mjs', codeSplitting: false },
    },
  },
});
