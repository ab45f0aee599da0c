// npm run -s train -- [--preset NAME | --finetune] [--data fashion-mnist | --data DIR] [options]
// Trains with the engine's Web Worker in headless Chromium (with --node: in this process on Dawn,
// no browser) and prints one JSON line per epoch
// ({"epoch":1,"loss":...,"accuracy":...,"evalAccuracy":...,"imagesPerSecond":...,"seconds":...});
// writes the final model as safetensors with timm names (--out, default model.safetensors) and its
// config beside it (model.json), which `npm run classify -- --model model.safetensors` reads.
//   --node             run the engine in Node on Dawn (the webgpu package) instead of Chromium
//   --preset NAME      train a preset from scratch (default fashion-mnist)
//   --finetune         fine-tune the embedded DeiT-tiny instead
//   --data DIR         one sub-folder of images per class (default: the bundled Fashion-MNIST split)
//   --train N --holdout N   Fashion-MNIST images to train on and to evaluate on (default 9000, 1000)
//   --per-class N      instead of --train: the first N images of each class (after the held-out ones)
//   --idx DIR          IDX files as Fashion-MNIST ships them (train-images-idx3-ubyte.gz, train-labels-,
//                      t10k-images-, t10k-labels-, gzipped or not): evaluates on the first --holdout
//                      test images (default all), trains on the train files (the first --train N, or
//                      --per-class N), or without them on the test images after the held-out ones
//   --classes A,B,...  class names by label for --idx (default Fashion-MNIST's)
//   --epochs N --batch N --lr X --trainable all|head|last:K --seed N --out FILE
//   --accumulate N     micro-batches of --batch per optimizer step (gradient accumulation): the
//                      update of one batch of N x batch, with the memory of one micro-batch
//   --checkpoint FILE  after every epoch but the last, write the run's checkpoint (weights, AdamW
//                      state, step) to FILE, and the options it started with to FILE.json
//   --resume FILE      continue that run after its last finished epoch, with the options of FILE.json
//                      (no others): a run longer than one sitting, or one the machine lost
//   --augment seed|light|none   augmentation of training batches (default seed; none with
//                      --trainable head): seed is the DeiT recipe (random resized crop, flip, colour
//                      jitter, RandAugment, mixup/CutMix with soft targets), light only crop and flip
//                      (better for 28-px Fashion-MNIST and short runs); with none, head-only and
//                      last:K runs compute the frozen layers' output once and train from it
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { openPage } from './chromium.js';
import { exitOnUncaught, plainMessage } from './errors.js';

// Any failure ends as one line on stderr and status 1 (bad options: 2), never a stack trace.
exitOnUncaught('train');

/** Bad options end the command with a message, not a stack trace. @param {string} message @returns {never} */
function usage(message) {
  console.error(`train: ${message}`);
  process.exit(2);
}

/** @param {string[]} argv */
function parseArgs(argv) {
  /** @type {Record<string, string | boolean>} */
  const o = {};
  for (let i = 0; i < argv.length; i++) {
    const a = /** @type {string} */ (argv[i]);
    if (!a.startsWith('--')) usage(`unexpected argument ${a}`);
    const key = a.slice(2);
    if (key === 'finetune' || key === 'node') o[key] = true;
    else o[key] = /** @type {string} */ (argv[++i]);
  }
  return o;
}

/** The options, and with --resume the checkpoint to continue from; a resumed run takes the options it started with. */
function readOptions() {
  const argv = process.argv.slice(2);
  if (argv[0] !== '--resume') {
    if (argv.includes('--resume')) usage('--resume FILE takes no other options: the run continues with those it started with');
    return { opts: parseArgs(argv), resume: undefined };
  }
  if (argv.length !== 2) usage('--resume FILE takes no other options: the run continues with those it started with');
  const file = /** @type {string} */ (argv[1]);
  if (!existsSync(file) || !existsSync(`${file}.json`)) usage(`--resume ${file}: needs ${file} and ${file}.json, as --checkpoint ${file} writes them`);
  let started;
  try {
    started = JSON.parse(readFileSync(`${file}.json`, 'utf8'));
  } catch (e) {
    console.error(`--resume ${file}: ${file}.json is not valid JSON (${plainMessage(e)})`);
    process.exit(1);
  }
  if (!Array.isArray(started?.argv) || !started.argv.every((/** @type {unknown} */ a) => typeof a === 'string')) {
    console.error(`--resume ${file}: ${file}.json has no "argv" list of strings, as --checkpoint writes it`);
    process.exit(1);
  }
  return { opts: parseArgs(started.argv), resume: file };
}

const IMAGE = /\.(png|jpe?g|webp|gif|bmp)$/i;
const { opts, resume } = readOptions();
const num = (/** @type {string} */ k, /** @type {number} */ d) => (opts[k] === undefined ? d : Number(opts[k]));
const trainableArg = String(opts.trainable ?? (opts.finetune ? 'head' : 'all'));
const trainable = trainableArg.startsWith('last:') ? { lastBlocks: Number(trainableArg.slice(5)) } : trainableArg;
const augment = opts.augment === undefined ? undefined : String(opts.augment);
if (augment !== undefined && !['seed', 'light', 'none'].includes(augment)) usage(`--augment must be seed, light or none, got ${augment}`);
const perClass = opts['per-class'] === undefined ? undefined : num('per-class', 0);
/** @type {any} */
let dataset = { kind: 'fashion-mnist', holdout: num('holdout', 1000), ...(perClass === undefined ? { train: num('train', 9000) } : { perClass }) };
if (opts.idx) {
  const dir = String(opts.idx);
  /** The path of DIR/NAME(.gz), or undefined when neither exists. @param {string} name */
  const idxFile = (name) => [`${name}.gz`, name].map((f) => join(dir, f)).find((f) => existsSync(f));
  const test = { images: idxFile('t10k-images-idx3-ubyte'), labels: idxFile('t10k-labels-idx1-ubyte') };
  const train = { images: idxFile('train-images-idx3-ubyte'), labels: idxFile('train-labels-idx1-ubyte') };
  if (!test.images || !test.labels) usage(`--idx ${dir}: t10k-images-idx3-ubyte(.gz) and t10k-labels-idx1-ubyte(.gz) are needed`);
  const holdout = opts.holdout === undefined ? undefined : num('holdout', 0);
  const pick = perClass === undefined ? { count: opts.train === undefined ? undefined : num('train', 0) } : { perClass };
  dataset = {
    kind: 'idx-files',
    ...(opts.classes !== undefined && { classes: String(opts.classes).split(',') }),
    holdout: { ...test, offset: 0, count: holdout },
    train: train.images && train.labels ? { ...train, offset: 0, ...pick } : { ...test, offset: holdout ?? 0, ...pick },
  };
  if (!(train.images && train.labels) && holdout === undefined) usage(`--idx ${dir} has no train-*-ubyte files: give --holdout N to train on the test images after the first N`);
} else if (opts.data && opts.data !== 'fashion-mnist') {
  const dir = String(opts.data);
  const classes = readdirSync(dir).filter((d) => statSync(join(dir, d)).isDirectory()).sort();
  dataset = {
    kind: 'files',
    classes: classes.map((name) => ({
      name,
      files: readdirSync(join(dir, name)).filter((f) => IMAGE.test(f)).map((f) => ({ name: f, file: join(dir, name, f) })),
    })),
  };
}
const request = {
  model: opts.finetune ? 'current' : String(opts.preset ?? 'fashion-mnist'),
  dataset,
  settings: { epochs: num('epochs', 10), batch: num('batch', 64), accumulate: num('accumulate', 1), lr: num('lr', 1e-3), trainable, seed: num('seed', 0), warmupEpochs: num('warmup', 1), augment },
};
const out = String(opts.out ?? 'model.safetensors');
const checkpoint = opts.checkpoint === undefined ? undefined : String(opts.checkpoint);
if (checkpoint && !resume) writeFileSync(`${checkpoint}.json`, JSON.stringify({ argv: process.argv.slice(2) }, null, 2));

/** Writes the config beside the model written to `out`, read from its header (not the whole file). @param {number} evalAccuracy */
function writeConfig(evalAccuracy) {
  const fd = openSync(out, 'r');
  let header;
  try {
    const length = Buffer.alloc(8);
    readSync(fd, length, 0, 8, 0);
    const json = Buffer.alloc(Number(length.readBigUInt64LE(0)));
    readSync(fd, json, 0, json.length, 8);
    header = JSON.parse(json.toString('utf8'));
  } finally {
    closeSync(fd);
  }
  // The config travels in the safetensors metadata; a .json beside it lets `npm run classify --model` use it.
  const configPath = out.replace(/\.safetensors$/, '') + '.json';
  writeFileSync(configPath, JSON.stringify(JSON.parse(header.__metadata__.config), null, 2));
  console.error(`wrote ${out} and ${configPath}; held-out accuracy ${evalAccuracy.toFixed(4)}`);
}

/** Written aside (`${checkpoint}.partial`) and renamed, so a run killed mid-write leaves the previous epoch's file whole. @param {number} epoch */
function checkpointWritten(epoch) {
  if (!checkpoint) return;
  renameSync(`${checkpoint}.partial`, checkpoint);
  console.error(`wrote ${checkpoint} after epoch ${epoch}`);
}

/** The engine in this process on Dawn. */
async function trainInNode() {
  const { loadNodeLibrary } = await import('./node-engine.js');
  const { load, close } = await loadNodeLibrary();
  try {
    const cli = /** @type {typeof import('../src/cli/node')} */ (await load('/src/cli/node.ts'));
    const save = (/** @type {Uint8Array} */ bytes, /** @type {number} */ epoch) => {
      writeFileSync(`${checkpoint}.partial`, bytes);
      checkpointWritten(epoch);
    };
    const result = await cli.train(/** @type {any} */ (request), !!opts.finetune, (r) => console.log(JSON.stringify(r)), checkpoint ? save : undefined, resume);
    writeFileSync(out, result.model);
    writeConfig(result.evalAccuracy);
  } finally {
    await close();
  }
}

/**
 * The engine's Web Worker in headless Chromium. Every file goes both ways over the page's local
 * server, streamed: the dataset's files and the checkpoint to resume are served to the page, the
 * model and each epoch's checkpoint are PUT back (see openPage).
 */
async function trainInChromium() {
  const { page, url, close, serve, receive } = await openPage('cli.html');
  try {
    page.on('pageerror', (e) => console.error(`page error: ${plainMessage(e)}`));
    await page.exposeFunction('reportEpoch', (/** @type {object} */ r) => console.log(JSON.stringify(r)));
    let n = 0;
    /** The URL path the page fetches `file` from. @param {string} file */
    const served = (file) => {
      const path = `/__cli/input/${n++}/${encodeURIComponent(basename(file))}`;
      serve(path, file);
      return path;
    };
    /** @type {any} */
    const ds = request.dataset;
    const dataset = ds.kind === 'files'
      ? { ...ds, classes: ds.classes.map((/** @type {any} */ c) => ({ ...c, files: c.files.map((/** @type {any} */ f) => ({ ...f, file: served(f.file) })) })) }
      : ds.kind === 'idx-files'
        ? { ...ds, train: { ...ds.train, images: served(ds.train.images), labels: served(ds.train.labels) }, holdout: { ...ds.holdout, images: served(ds.holdout.images), labels: served(ds.holdout.labels) } }
        : ds;
    receive('/__cli/out/model.safetensors', out);
    if (checkpoint) receive('/__cli/out/checkpoint', `${checkpoint}.partial`, (query) => checkpointWritten(Number(query.get('epoch'))));
    await page.goto(url);
    await page.waitForFunction(() => window.training !== undefined);
    const result = await page.evaluate(
      ([r, f, c, from]) => (/** @type {NonNullable<Window['training']>} */ (window.training)).train(/** @type {any} */ (r), /** @type {boolean} */ (f), /** @type {boolean} */ (c), /** @type {string | undefined} */ (from)),
      /** @type {const} */ ([{ ...request, dataset }, !!opts.finetune, !!checkpoint, resume && served(resume)]),
    );
    writeConfig(result.evalAccuracy);
  } finally {
    await close();
  }
}

let status = 0;
try {
  await (opts.node ? trainInNode() : trainInChromium());
} catch (e) {
  console.error(plainMessage(e));
  status = 1;
}
process.exit(status);
