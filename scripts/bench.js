// npm run bench [-- --suite kernels]: serves the sources with Vite, opens bench.html in headless
// Chromium (WebGPU on whatever adapter it finds: SwiftShader on a machine without a GPU) and
// prints the page's figures. Exits non-zero if the page reports an error.
import { openPage } from './chromium.js';

const suiteArg = process.argv.indexOf('--suite');
const suite = suiteArg > 0 ? process.argv[suiteArg + 1] : 'kernels';

const { page, url, close } = await openPage(`bench.html?suite=${suite}`);
let failed = false;
try {
  page.on('console', (msg) => {
    if (msg.type() === 'log') console.log(msg.text());
  });
  page.on('pageerror', (e) => {
    console.error(`page error: ${e.message}`);
    failed = true;
  });
  await page.goto(url);
  await page.waitForFunction(() => window.benchDone === true, undefined, { timeout: 0, polling: 500 });
  failed ||= Boolean(await page.evaluate(() => window.benchError));
} finally {
  await close();
}
process.exit(failed ? 1 : 0);
