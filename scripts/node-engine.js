// The library's Node entry (src/node.ts) for the scripts' --node mode, loaded from the sources
// through Vite's server-side module loader: the same transform the tests use (TypeScript, `?raw`
// WGSL), always the checkout's current code, no build step to forget or go stale.

/** `load(path)` imports any module of the sources by its path from the root ('/src/...'). @returns {Promise<{ lib: typeof import('../src/node'); load: (path: string) => Promise<unknown>; close: () => Promise<void> }>} */
export async function loadNodeLibrary() {
  const { createServer } = await import('vite');
  const server = await createServer({
    root: new URL('..', import.meta.url).pathname,
    configFile: false,
    logLevel: 'silent',
    appType: 'custom',
    server: { middlewareMode: true, hmr: false, watch: null },
  });
  const lib = /** @type {typeof import('../src/node')} */ (await server.ssrLoadModule('/src/node.ts'));
  // The scripts own their process: Dawn may poll gently (see pollGpuGently).
  lib.pollGpuGently();
  return { lib, load: (/** @type {string} */ path) => server.ssrLoadModule(path), close: () => server.close() };
}
