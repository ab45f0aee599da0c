// Where the Chromium used by tests and scripts comes from, and the flags WebGPU needs there.
// A user's own Chrome or Chromium wins (CHROME_PATH); then Debian's /usr/bin/chromium; otherwise
// Playwright's own browser, if one was installed with `npx playwright install chromium`.
import { createReadStream, createWriteStream, existsSync, statSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';

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
 * the page can refuse one too large before reading it, and nothing is read whole in Node), or by
 * byte ranges (a checkpoint read a tensor at a time).
 * `receive(url, file, done)` is the way back: the page PUTs a file's bytes to `url`, they are
 * streamed to `file`, and `done(query)` runs before the page's request returns (so the page can
 * wait for it); nothing crosses as base64 through page.evaluate, whose strings cap a file's size.
 * `close` ends both.
 * @param {string} path
 * @param {{ isolated?: boolean }} [options]
 */
export async function openPage(path, { isolated = false } = {}) {
  const { chromium } = await import('playwright');
  const { createServer } = await import('vite');
  /** @type {Map<string, string>} URL path -> file */
  const files = new Map();
  /** @type {Map<string, { file: string; done: (query: URLSearchParams) => void }>} URL path -> where a PUT goes */
  const uploads = new Map();
  /** @type {import('vite').Plugin} */
  const fileServer = {
    name: 'cli-files',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const [path = '', query = ''] = (req.url ?? '').split('?');
        const upload = uploads.get(path);
        if (upload && req.method === 'PUT') {
          pipeline(req, createWriteStream(upload.file))
            .then(() => upload.done(new URLSearchParams(query)))
            .then(() => res.end(), (e) => {
              res.statusCode = 500;
              res.end(`cannot write ${upload.file}: ${e?.code ?? e?.message ?? e}`);
            });
          return;
        }
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
        // A range (bytes=A-B) is how the page reads a large checkpoint a tensor at a time.
        const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
        const headers = { 'content-type': 'application/octet-stream', 'cache-control': 'no-store', 'accept-ranges': 'bytes' };
        if (range) {
          const start = Number(range[1]);
          const end = Math.min(Number(range[2]), size - 1);
          if (start > end) {
            res.writeHead(416, { ...headers, 'content-range': `bytes */${size}` });
            return res.end();
          }
          res.writeHead(206, { ...headers, 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${size}` });
          createReadStream(file, { start, end }).on('error', () => res.destroy()).pipe(res);
          return;
        }
        res.writeHead(200, { ...headers, 'content-length': size });
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
  /** @param {string} url @param {string} file @param {(query: URLSearchParams) => void} [done] */
  const receive = (url, file, done = () => undefined) => void uploads.set(url, { file, done });
  return { page, url: `${server.resolvedUrls?.local[0]}${path}`, close, serve, receive };
}
