// npm run classify -- [--model FILE.safetensors] [--top K] [--logits] FILE...
// Classifies image files (or .safetensors files holding a preprocessed `input` tensor) with the
// engine's Web Worker in headless Chromium, one browser for the whole run, and prints one JSON
// line per image on stdout; diagnostics go to stderr. Exit status 1 if any input failed.
import { readFileSync, existsSync } from 'node:fs';
import { basename } from 'node:path';
import { openPage } from './chromium.js';

const USAGE = 'usage: npm run classify -- [--model FILE.safetensors] [--top K] [--logits] FILE...';
const BATCH = 8;

/** @typedef {{ model?: string; config?: string; top: number; logits: boolean; files: string[] }} Options */

/** @param {string[]} argv @returns {Options} */
function parseArgs(argv) {
  /** @type {Options} */
  const opts = { model: undefined, top: 5, logits: false, files: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = /** @type {string} */ (argv[i]);
    if (a === '--model') opts.model = argv[++i];
    else if (a === '--top') opts.top = Number(argv[++i]);
    else if (a === '--logits') opts.logits = true;
    else if (a === '--help' || a === '-h') { console.error(USAGE); process.exit(0); }
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}\n${USAGE}`);
    else opts.files.push(a);
  }
  if (!opts.files.length) throw new Error(`no input files\n${USAGE}`);
  if (!Number.isInteger(opts.top) || opts.top < 1) throw new Error('--top needs a positive integer');
  if (opts.model) {
    const config = opts.model.replace(/\.safetensors$/, '.json');
    if (!existsSync(opts.model)) throw new Error(`--model ${opts.model} does not exist`);
    if (!existsSync(config)) throw new Error(`--model needs its config beside it: ${config} does not exist`);
    opts.config = config;
  }
  return opts;
}

/** @type {Options} */
let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  console.error(e instanceof Error ? e.message : e);
  process.exit(2);
}

const { page, url, close } = await openPage('cli.html');
let failures = 0;
try {
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  await page.goto(url);
  await page.waitForFunction(() => window.cli !== undefined);
  const model = opts.model ? readFileSync(opts.model).toString('base64') : undefined;
  const config = opts.config ? readFileSync(opts.config, 'utf8') : undefined;
  const adapter = await page.evaluate(([m, c]) => (/** @type {NonNullable<Window['cli']>} */ (window.cli)).init(m, c), [model, config]);
  console.error(`adapter: ${adapter}; model: ${opts.model ?? 'embedded DeiT-tiny'}`);
  for (let i = 0; i < opts.files.length; i += BATCH) {
    const batch = [];
    for (const file of opts.files.slice(i, i + BATCH)) {
      try {
        batch.push({ name: file, base64: readFileSync(file).toString('base64') });
      } catch (e) {
        const reason = /** @type {NodeJS.ErrnoException} */ (e);
        console.log(JSON.stringify({ file, error: `cannot read ${basename(file)}: ${reason.code ?? reason.message}` }));
        failures++;
      }
    }
    if (!batch.length) continue;
    const results = await page.evaluate(
      ({ files, top, logits }) => (/** @type {NonNullable<Window['cli']>} */ (window.cli)).classify(files, top, logits),
      { files: batch, top: opts.top, logits: opts.logits },
    );
    for (const r of results) {
      if (r.error) {
        failures++;
        console.error(`${r.file}: ${r.error}`);
      }
      console.log(JSON.stringify(r));
    }
  }
} finally {
  await close();
}
process.exit(failures ? 1 : 0);
