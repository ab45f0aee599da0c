// npm run classify -- [--node] [--model FILE.safetensors] [--top K] [--logits] [--size S|HxW]
//                     [--features [--blocks LIST] [--no-norm]] FILE...
// Classifies image files (or .safetensors files holding a preprocessed `input` tensor, N x C x H x W)
// with the engine's Web Worker in headless Chromium, one browser for the whole run, and prints one
// JSON line per image on stdout; diagnostics go to stderr. `--size` preprocesses images to another
// size than the model's (a ViT resamples its position embedding, as timm does). `--features`
// prints the backbone's features instead of classes: what the head reads, and with `--blocks`
// (comma-separated, counted from 0, negative from the end) those blocks' class tokens, registers
// and patch maps, after the final norm unless `--no-norm`. The page fetches every file from the local
// server that serves it (streamed from disk), so no file is read whole or encoded in Node.
// With --node the engine runs in this process on Dawn (the webgpu package) instead: no browser;
// images are decoded in Node (PNG and JPEG).
// Exit status: 0 when every input was classified; 1 when any failed (one line on stderr each) or
// the model could not be loaded (one line on stderr, and nothing classified); 2 for bad arguments
// (the problem and the usage on stderr).
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { openPage } from './chromium.js';
import { exitAfterOutput, exitOnUncaught, plainMessage } from './errors.js';

const USAGE = 'usage: npm run classify -- [--node] [--model FILE.safetensors] [--top K] [--logits] [--size S|HxW] [--features [--blocks LIST] [--no-norm]] FILE...';
const BATCH = 8;

exitOnUncaught('classify');

/** @typedef {{ model?: string; config?: string; top: number; logits: boolean; size?: number | [number, number]; features: boolean; blocks: number[]; norm: boolean; node: boolean; files: string[] }} Options */

/** @param {string} message @returns {never} */
function usage(message) {
  console.error(message);
  console.error(USAGE);
  process.exit(2);
}

/** @param {string[]} argv @returns {Options} */
function parseArgs(argv) {
  /** @type {Options} */
  const opts = { model: undefined, top: 5, logits: false, features: false, blocks: [], norm: true, node: false, files: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = /** @type {string} */ (argv[i]);
    if (a === '--model') opts.model = argv[++i];
    else if (a === '--top') opts.top = Number(argv[++i]);
    else if (a === '--logits') opts.logits = true;
    else if (a === '--node') opts.node = true;
    else if (a === '--size') opts.size = parseSize(argv[++i]);
    else if (a === '--features') opts.features = true;
    else if (a === '--blocks') opts.blocks = parseBlocks(argv[++i]);
    else if (a === '--no-norm') opts.norm = false;
    else if (a === '--help' || a === '-h') { console.error(USAGE); process.exit(0); }
    else if (a.startsWith('--')) usage(`unknown option ${a}`);
    else opts.files.push(a);
  }
  if (argv.includes('--model') && !opts.model) usage('--model needs a FILE.safetensors');
  if (!opts.files.length) usage('no input files');
  if (!Number.isInteger(opts.top) || opts.top < 1) usage('--top needs a positive integer');
  if ((opts.blocks.length || !opts.norm) && !opts.features) usage('--blocks and --no-norm go with --features');
  if (opts.features && opts.logits) usage('--logits and --features are different outputs: ask for one');
  if (opts.model) {
    const config = opts.model.replace(/\.safetensors$/, '.json');
    if (!existsSync(opts.model)) usage(`--model ${opts.model} does not exist`);
    if (config === opts.model) usage(`--model ${opts.model}: expected a .safetensors file (its config is the .json beside it)`);
    if (!existsSync(config)) usage(`--model needs its config beside it: ${config} does not exist`);
    opts.config = config;
  }
  return opts;
}

/** `224` or `160x256` (height x width). @param {string | undefined} text @returns {number | [number, number]} */
function parseSize(text) {
  const sides = (text ?? '').split('x').map(Number);
  if (!text || sides.length > 2 || sides.some((v) => !Number.isInteger(v) || v <= 0)) usage(`--size needs a side or HEIGHTxWIDTH in pixels, got ${text ?? 'nothing'}`);
  return sides.length === 1 ? /** @type {number} */ (sides[0]) : [/** @type {number} */ (sides[0]), /** @type {number} */ (sides[1])];
}

/** `-1` or `3,7,11`. @param {string | undefined} text @returns {number[]} */
function parseBlocks(text) {
  const blocks = (text ?? '').split(',').map((v) => (v.trim() === '' ? Number.NaN : Number(v)));
  if (!text || blocks.some((v) => !Number.isInteger(v))) usage(`--blocks needs block numbers separated by commas (negative from the end), got ${text ?? 'nothing'}`);
  return blocks;
}

/** What every file is asked for. @param {Options} o @returns {import('../src/cli/output').CliRequest} */
function requestOf(o) {
  return { top: o.top, logits: o.logits, size: o.size, ...(o.features && { features: { blocks: o.blocks, norm: o.norm } }) };
}

/** Why `file` cannot be served, or undefined when it can. @param {string} file */
function unreadable(file) {
  try {
    if (!statSync(file).isFile()) return `cannot read ${basename(file)}: not a file`;
    accessSync(file, constants.R_OK);
    return undefined;
  } catch (e) {
    const reason = /** @type {NodeJS.ErrnoException} */ (e);
    return `cannot read ${basename(file)}: ${reason.code ?? reason.message}`;
  }
}

/** The `labelsFile` a config names, if it is readable JSON that names one (the engine reports any other problem). @param {string} config */
function labelsFileOf(config) {
  try {
    if (statSync(config).size > 2 ** 20) return undefined;
    const json = JSON.parse(readFileSync(config, 'utf8'));
    return typeof json?.labelsFile === 'string' ? json.labelsFile : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Classifies every file in batches of BATCH, printing each result as it comes; returns how many failed.
 * @param {(batch: ({ name: string; path: string } | { name: string; error: string })[]) => Promise<import('../src/cli/output').CliOutput[]>} classifyBatch
 */
async function classifyAll(classifyBatch) {
  let failed = 0;
  for (let i = 0; i < opts.files.length; i += BATCH) {
    const batch = opts.files.slice(i, i + BATCH).map((file) => {
      const why = unreadable(file);
      return why ? { name: file, error: why } : { name: file, path: file };
    });
    for (const r of await classifyBatch(batch)) {
      if (r.error) {
        failed++;
        console.error(`${r.file}: ${r.error}`);
      }
      console.log(JSON.stringify(r));
    }
  }
  return failed;
}

/** The engine in this process on Dawn. @returns {Promise<number>} failures */
async function classifyInNode() {
  const { loadNodeLibrary } = await import('./node-engine.js');
  const { load, close } = await loadNodeLibrary();
  try {
    const cli = /** @type {typeof import('../src/cli/node')} */ (await load('/src/cli/node.ts'));
    const started = await cli.init(opts.model && opts.config ? { checkpoint: opts.model, config: opts.config } : undefined);
    if ('error' in started) {
      console.error(started.error);
      return 1;
    }
    console.error(`adapter: ${started.adapter} (Node, Dawn); model: ${opts.model ?? 'embedded DeiT-tiny'}`);
    try {
      return await classifyAll((batch) => cli.classify(started.engine, batch, requestOf(opts)));
    } finally {
      started.engine.destroy();
    }
  } finally {
    await close();
  }
}

/** The engine's Web Worker in headless Chromium. @returns {Promise<number>} failures */
async function classifyInChromium() {
  const { page, url, close, serve } = await openPage('cli.html');
  try {
    page.on('pageerror', (e) => console.error(`page error: ${plainMessage(e)}`));
    await page.goto(url);
    await page.waitForFunction(() => window.cli !== undefined);
    /** @type {import('../src/cli/page').CliModel | undefined} */
    let model;
    if (opts.model && opts.config) {
      serve('/__cli/model/model.safetensors', opts.model);
      serve('/__cli/model/config.json', opts.config);
      // A labels file the config names (as the demo's model folder has) is served from beside it.
      const labelsFile = labelsFileOf(opts.config);
      if (labelsFile) serve(new URL(labelsFile, 'http://cli/__cli/model/').pathname, join(dirname(opts.config), labelsFile));
      model = { url: '/__cli/model/', checkpoint: opts.model, config: opts.config };
    }
    const started = await page.evaluate((m) => (/** @type {NonNullable<Window['cli']>} */ (window.cli)).init(m), model);
    if ('error' in started) {
      console.error(started.error);
      return 1;
    }
    console.error(`adapter: ${started.adapter}; model: ${opts.model ?? 'embedded DeiT-tiny'}`);
    let n = 0;
    return await classifyAll(async (batch) => {
      const files = batch.map((f) => {
        if ('error' in f) return f;
        const path = `/__cli/input/${n++}/${encodeURIComponent(basename(f.path))}`;
        serve(path, f.path);
        return { name: f.name, url: path };
      });
      return page.evaluate(
        ({ files, request }) => (/** @type {NonNullable<Window['cli']>} */ (window.cli)).classify(files, request),
        { files, request: requestOf(opts) },
      );
    });
  } finally {
    await close();
  }
}

const opts = parseArgs(process.argv.slice(2));
let failures = 0;
try {
  failures = await (opts.node ? classifyInNode() : classifyInChromium());
} catch (e) {
  console.error(plainMessage(e));
  failures = 1;
}
exitAfterOutput(failures ? 1 : 0);
