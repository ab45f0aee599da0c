// The command-line scripts' --node mode: the engine in this process on Dawn, no browser. The same
// calls as page.ts offers the scripts in Chromium, with files read from disk instead of served.
import { readFile } from 'node:fs/promises';
import { FASHION_MNIST_CLASSES, parseIdxImages, type IdxImages } from '../data/idx';
import type { Engine } from '../engine/engine';
import { checkTrainSettings, DEFAULT_TRAIN_SETTINGS } from '../engine/train';
import { dataset, trainingData, type DatasetRequest } from '../engine/trainingData';
import type { Pixels } from '../image/preprocess';
import { createEngine, decodeImageBytes, loadModelFromPath, readImage } from '../node';
import type { IdxSplit, TrainRequest } from '../worker/api';
import { attributeLoadError } from '../weights/attribute';
import { parseSafetensors } from '../weights/safetensors';
import { answer, tensorInput, type CliEngine, type CliOutput, type CliRequest } from './output';
import type { CliModel, EpochReport, FilesDataset, IdxFilesDataset, IdxFilesSplit } from './page';

const EMBEDDED_MODEL = new URL('../../public/models/deit-tiny/', import.meta.url).pathname;

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Starts the engine and loads the user's model (the embedded DeiT-tiny without one), or says why not in one message. */
export async function init(model?: Omit<CliModel, 'url'>): Promise<{ engine: Engine; adapter: string } | { error: string }> {
  let engine: Engine;
  try {
    engine = await createEngine();
  } catch (e) {
    return { error: message(e) };
  }
  try {
    await loadModelFromPath(engine, model?.checkpoint ?? EMBEDDED_MODEL);
  } catch (e) {
    engine.destroy();
    return { error: model ? attributeLoadError(message(e), model) : message(e) };
  }
  return { engine, adapter: engine.adapter };
}

/**
 * Classifies files (or the reason the script cannot read one, passed through so the output keeps
 * input order): images together, a `.safetensors` file's `input` tensor (N, C, H, W) on its own.
 */
export async function classify(engine: Engine, files: ({ name: string; path: string } | { name: string; error: string })[], request: CliRequest): Promise<CliOutput[]> {
  const calls: CliEngine<Pixels> = {
    classify: (images, options) => engine.classifyImages(images, options),
    classifyTensor: (input, batch, size, options) => engine.classifyTensor(input, batch, size, options),
    features: (images, options) => engine.featuresOfImages(images, options),
    featuresTensor: (input, batch, size, options) => engine.featuresOfTensor(input, batch, size, options),
  };
  const perFile: CliOutput[][] = files.map(() => []);
  const images: { at: number; name: string; pixels: Pixels }[] = [];
  for (const [at, f] of files.entries()) {
    if ('error' in f) {
      perFile[at] = [{ file: f.name, error: f.error }];
      continue;
    }
    try {
      if (!f.name.toLowerCase().endsWith('.safetensors')) {
        images.push({ at, name: f.name, pixels: await readImage(f.path) });
        continue;
      }
      perFile[at] = await answer(calls, request, tensorInput(parseSafetensors(await readFile(f.path))), () => f.name);
    } catch (e) {
      perFile[at] = [{ file: f.name, error: message(e) }];
    }
  }
  if (images.length) {
    try {
      const results = await answer(calls, request, { images: images.map((i) => i.pixels) }, (i) => images[i]!.name);
      results.forEach((r, i) => (perFile[images[i]!.at] = [r]));
    } catch {
      // One bad image fails the batch: redo one by one so every other file still gets its answer.
      for (const { at, name, pixels } of images) {
        try {
          perFile[at] = await answer(calls, request, { images: [pixels] }, () => name);
        } catch (e) {
          perFile[at] = [{ file: name, error: message(e) }];
        }
      }
    }
  }
  return perFile.flat();
}

type TrainCliRequest = Omit<TrainRequest, 'dataset'> & { dataset: Exclude<TrainRequest['dataset'], { kind: 'images' }> | FilesDataset | IdxFilesDataset };

const FASHION_MNIST_DIR = new URL('../../public/data/fashion-mnist/', import.meta.url).pathname;

/** The bundled Fashion-MNIST split from disk, as the demo serves it. */
async function fashionMnistFromDisk(): Promise<IdxImages> {
  const [images, labels] = await Promise.all(['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'].map((f) => readFile(`${FASHION_MNIST_DIR}${f}`)));
  return parseIdxImages(images!, labels!, 'Fashion-MNIST');
}

const bytesOf = async (path: string) => new Uint8Array(await readFile(path));

/**
 * Trains as the page's `training.train` does (from a preset, or fine-tuning the embedded
 * DeiT-tiny), reporting each epoch and writing each epoch's checkpoint but the last through the
 * callbacks; returns the model as safetensors. `resume` continues the run a checkpoint came from.
 */
export async function train(
  request: TrainCliRequest, fineTune: boolean,
  report: (r: EpochReport) => void, saveCheckpointFile: ((bytes: Uint8Array, epoch: number) => void) | undefined, resume?: string,
): Promise<{ model: Uint8Array; evalAccuracy: number }> {
  const engine = await createEngine();
  try {
    if (fineTune) await loadModelFromPath(engine, EMBEDDED_MODEL);
    const ds = request.dataset;
    const idxSplit = async ({ images, labels, ...selection }: IdxFilesSplit): Promise<IdxSplit> => ({ ...selection, images: (await bytesOf(images)).buffer as ArrayBuffer, labels: (await bytesOf(labels)).buffer as ArrayBuffer });
    const described: DatasetRequest<{ name: string; bytes: Uint8Array }> = ds.kind === 'files'
      ? { kind: 'images', classes: await Promise.all(ds.classes.map(async (c) => ({ name: c.name, images: await Promise.all(c.files.map(async (f) => ({ name: f.name, bytes: await bytesOf(f.file) }))) }))) }
      : ds.kind === 'idx-files' ? { kind: 'idx', classes: ds.classes ?? FASHION_MNIST_CLASSES, train: await idxSplit(ds.train), holdout: await idxSplit(ds.holdout) } : ds;
    const settings = { ...DEFAULT_TRAIN_SETTINGS, ...request.settings };
    checkTrainSettings(settings);
    const { classes, items } = await trainingData(described, {
      fashionMnist: fashionMnistFromDisk,
      decode: async (image) => decodeImageBytes(image.bytes, image.name),
    });
    const t0 = performance.now();
    const losses: number[] = [];
    const accuracies: number[] = [];
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    let recovered: string | undefined;
    const result = await engine.train(request.model, classes, async (config) => ({ train: dataset(items.train, config), holdout: dataset(items.holdout, config) }), settings, {
      onProgress: (p) => {
        if (p.features) return; // the head-only run computing its features, before any step
        if (p.recovered) {
          // The epoch runs again from its start: its report says so.
          recovered = p.recovered.message;
          losses.length = 0;
          accuracies.length = 0;
          return;
        }
        if (p.evalAccuracy === undefined) {
          losses.push(p.loss);
          accuracies.push(p.accuracy);
          return;
        }
        const warning = [recovered, p.warning].filter(Boolean).join('; ');
        report({ epoch: p.epoch + 1, loss: mean(losses), accuracy: mean(accuracies), evalAccuracy: p.evalAccuracy, imagesPerSecond: p.imagesPerSecond, seconds: (performance.now() - t0) / 1000, adapter: engine.adapter, ...(warning && { warning }) });
        recovered = undefined;
        losses.length = 0;
        accuracies.length = 0;
      },
      // Every epoch but the last: after the last, the model file stands for the run.
      saveCheckpoint: saveCheckpointFile && (async (bytes, epoch) => {
        if (epoch < settings.epochs) saveCheckpointFile(bytes, epoch);
      }),
    }, resume === undefined ? undefined : await bytesOf(resume));
    return { model: await engine.exportModel(), evalAccuracy: result.evalAccuracy };
  } finally {
    engine.destroy();
  }
}
