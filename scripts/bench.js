// npm run bench [-- --suite kernels] [-- --node]: serves the sources with Vite, opens bench.html in
// headless Chromium (WebGPU on whatever adapter it finds: SwiftShader on a machine without a GPU)
// and prints the page's figures. Exits non-zero if the page reports an error.
// --node runs the models suite twice in one run, in Chromium and then in this process on Dawn
// (the webgpu package), and ends with DeiT-tiny's forward ms/image side by side.
import { readFileSync } from 'node:fs';
import { openPage } from './chromium.js';
import { plainMessage } from './errors.js';

const suiteArg = process.argv.indexOf('--suite');
const node = process.argv.includes('--node');
const suite = suiteArg > 0 ? process.argv[suiteArg + 1] : node ? 'models' : 'kernels';
if (node && suite !== 'models') {
  console.error(`bench: --node runs the models suite in Chromium and in Node; --suite ${suite} runs in Chromium only`);
  process.exit(2);
}

/** The suite in Chromium; returns its lines, or undefined if it failed. @returns {Promise<string[] | undefined>} */
async function inChromium() {
  const { page, url, close } = await openPage(`bench.html?suite=${suite}`, { isolated: true });
  /** @type {string[]} */
  const lines = [];
  let failed = false;
  try {
    page.on('console', (msg) => {
      if (msg.type() !== 'log') return;
      lines.push(msg.text());
      console.log(msg.text());
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
  return failed ? undefined : lines;
}

/** The models suite in Node on Dawn; returns its lines. @returns {Promise<string[]>} */
async function inNode() {
  const { loadNodeLibrary } = await import('./node-engine.js');
  const { lib, load, close } = await loadNodeLibrary();
  /** @type {string[]} */
  const lines = [];
  try {
    const { benchModels } = /** @type {typeof import('../src/bench/models')} */ (await load('/src/bench/models.ts'));
    const dir = new URL('../public/models/deit-tiny/', import.meta.url);
    await benchModels(readFileSync(new URL('model.safetensors', dir)), JSON.parse(readFileSync(new URL('config.json', dir), 'utf8')), await lib.createNodeGpu(), (line) => {
      lines.push(line);
      console.log(line);
    });
  } finally {
    await close();
  }
  return lines;
}

/** DeiT-tiny's ms/image (GPU, end to end) by batch, from a suite's lines. @param {string[]} lines */
function deitFigures(lines) {
  /** @type {Map<number, { gpu: string; e2e: string }>} */
  const byBatch = new Map();
  for (const l of lines) {
    const m = /^DeiT-tiny batch (\d+): ([\d.]+) ms\/image GPU \([^)]*\), ([\d.]+) ms\/image end to end/.exec(l);
    if (m) byBatch.set(Number(m[1]), { gpu: m[2] ?? '', e2e: m[3] ?? '' });
  }
  return byBatch;
}

const adapterOf = (/** @type {string[]} */ lines) => lines.find((l) => l.startsWith('adapter: '))?.slice(9) ?? 'unknown adapter';

if (!node) {
  process.exit((await inChromium()) ? 0 : 1);
}
console.log('== Chromium (the engine in the page, WebGPU from the browser) ==');
const browser = await inChromium();
if (!browser) process.exit(1);
console.log('== Node (the engine in this process, WebGPU from Dawn) ==');
let nodeLines;
try {
  nodeLines = await inNode();
} catch (e) {
  console.error(`bench: Node: ${plainMessage(e)}`);
  process.exit(1);
}
const [b, n] = [deitFigures(browser), deitFigures(nodeLines)];
console.log(`== DeiT-tiny forward, ms/image (GPU time / end to end), one run ==`);
console.log(`Chromium: ${adapterOf(browser)}; Node: ${adapterOf(nodeLines)}`);
for (const batch of [1, 8]) {
  const x = b.get(batch);
  const y = n.get(batch);
  console.log(`batch ${batch}: Chromium ${x ? `${x.gpu} / ${x.e2e}` : '?'}; Node (Dawn) ${y ? `${y.gpu} / ${y.e2e}` : '?'}`);
}
process.exit(0);
