// npm run bench [-- --suite kernels]: serves the sources with Vite, opens bench.html in headless
// Chromium (WebGPU on whatever adapter it finds: SwiftShader on a machine without a GPU) and
// prints the page's figures. Exits non-zero if the page reports an error.
import { chromium } from 'playwright';
import { createServer } from 'vite';
import { chromiumArgs, chromiumExecutable } from './chromium.js';

const suiteArg = process.argv.indexOf('--suite');
const suite = suiteArg > 0 ? process.argv[suiteArg + 1] : 'kernels';

// No file watching: an edit during a long run must not reload the page under it.
const server = await createServer({ logLevel: 'error', server: { port: 0, host: '127.0.0.1', hmr: false, watch: null } });
await server.listen();
const url = server.resolvedUrls?.local[0];
const browser = await chromium.launch({ executablePath: chromiumExecutable(), args: chromiumArgs });
let failed = false;
try {
  const page = await browser.newPage();
  page.on('console', (msg) => {
    if (msg.type() === 'log') console.log(msg.text());
  });
  page.on('pageerror', (e) => {
    console.error(`page error: ${e.message}`);
    failed = true;
  });
  await page.goto(`${url}bench.html?suite=${suite}`);
  await page.waitForFunction(() => window.benchDone === true, undefined, { timeout: 0, polling: 500 });
  failed ||= Boolean(await page.evaluate(() => window.benchError));
} finally {
  await browser.close();
  await server.close();
}
process.exit(failed ? 1 : 0);
