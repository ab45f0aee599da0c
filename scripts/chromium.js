// Where the Chromium used by tests and scripts comes from, and the flags WebGPU needs there.
// A user's own Chrome or Chromium wins (CHROME_PATH); then Debian's /usr/bin/chromium; otherwise
// Playwright's own browser, if one was installed with `npx playwright install chromium`.
import { createReadStream, existsSync, statSync } from 'node:fs';

/** @returns {string | undefined} */
export function chromiumExecutable() {
  const fromEnv = process.env.CHROME_PATH;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`CHROME_PATH=${fromEnv} does not exist`);
    return fromEnv;
  }
  return ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
}

/**
 * WebGPU is behind --enable-unsafe-webgpu in headless Linux Chromium (SwiftShader without a GPU).
 * The soak test and benchmark measure the engine worker's JS heap after a garbage collection:
 * `gc` in the worker (--expose-gc), and performance.measureUserAgentSpecificMemory in a
 * cross-origin isolated page, answered at once instead of at the next natural collection.
 */
export const chromiumArgs = [
  '--js-flags=--expose-gc',
  '--enable-blink-features=ForceEagerMeasureMemory',
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-dev-shm-usage',
];

/** Response headers that make a page cross-origin isolated, where it can measure its worker's heap (the soak test and benchmark). */
export const CROSS_ORIGIN_ISOLATED = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

/**
 * Serves the project's sources with Vite (no file watching: an edit during a long run must not
 * reload the page under it) and opens `path` in headless Chromium. `serve(url, file)` makes a local
 * file available to the page at the URL path `url` (under /__cli/), streamed from disk with its Content-Length (so
 * the page can refuse one too large before reading it, and nothing is read whole in Node).
 * `close` ends both. `isolated` serves the page cross-origin isolated.
 * @param {string} path
 * @param {{ isolated?: boolean }} [options]
 */
export async function openPage(path, { isolated = false } = {}) {
  const { chromium } = await import('playwright');
  const { createServer } = await import('vite');
  /** @type {Map<string, string>} URL path -> file */
  const files = new Map();
  /** @type {import('vite').Plugin} */
  const fileServer = {
    name: 'cli-files',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const path = (req.url ?? '').split('?')[0] ?? '';
        const file = files.get(path);
        // Under /__cli/ only what was served: not Vite's index.html fallback for a file it lacks.
        if (!file && path.startsWith('/__cli/')) {
          res.statusCode = 404;
          return res.end();
        }
        if (!file) return next();
        let size;
        try {
          size = statSync(file).size;
        } catch {
          res.statusCode = 404;
          return res.end();
        }
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size, 'cache-control': 'no-store' });
        createReadStream(file).on('error', () => res.destroy()).pipe(res);
      });
    },
  };
  const server = await createServer({ logLevel: 'silent', clearScreen: false, plugins: [fileServer], server: { port: 0, host: '127.0.0.1', hmr: false, watch: null, ...(isolated && { headers: CROSS_ORIGIN_ISOLATED }) } });
  await server.listen();
  const browser = await chromium.launch({ executablePath: chromiumExecutable(), args: chromiumArgs });
  const page = await browser.newPage();
  const close = async () => {
    await browser.close();
    await server.close();
  };
  /** @param {string} url @param {string} file */
  const serve = (url, file) => void files.set(url, file);
  return { page, url: `${server.resolvedUrls?.local[0]}${path}`, close, serve };
}
