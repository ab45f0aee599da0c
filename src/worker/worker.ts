// The engine's side of the worker: `serveEngine()` answers an EngineClient (client.ts) from inside
// a Web Worker, which then owns the GPU device. An app's own worker file is two lines:
//   import { serveEngine } from 'vitgpu/worker';
//   serveEngine();
// Its bundler then builds the worker with the app, which it cannot do for a worker file inside
// node_modules (see README, "Use it in your app").
import * as Comlink from 'comlink';
import { fetchFashionMnist } from '../data/idx';
import { Engine, type ClassifyOptions, type ClassifyResult, type DeviceLostEvent, type InputSizeOption } from '../engine/engine';
import type { FeatureOptions, FeaturesResult } from '../engine/features';
import { checkTrainSettings, DEFAULT_TRAIN_SETTINGS } from '../engine/train';
import { dataset, trainingData } from '../engine/trainingData';
import { decodeImage } from '../image/decode';
import { preprocess, type Pixels } from '../image/preprocess';
import type { ModelConfig } from '../graph/family';
import { runKernelBench } from '../bench/kernels';
import { runModelBench } from '../bench/models';
import { runTrainingBench } from '../bench/training';
import { runSegmentBench } from '../bench/segment';
import { checkSegmentSettings, fashionMnistSegmentation, type SegDataset, type SegmentSettings } from '../engine/segment';
import { checkSegHeadConfig, SEED_HIDDEN, type SegHeadConfig } from '../graph/segment';
import { binaryMasks, checkMask, classMasks, cropMask } from '../training/segmentation';
import { createGpu } from '../gpu/device';
import { deleteCheckpoint, deleteModel, listModels, loadCheckpointBytes, loadModelFile, saveCheckpoint, saveModelFile } from '../training/storage';
import type { LoadProgress } from '../weights/load';
import type { BenchSuite, EngineApi, ImageInput, SegmentRequest } from './api';

let engine: Promise<Engine> | null = null;
/** The page's device-loss listeners (Comlink proxies). */
const lostListeners: ((lost: DeviceLostEvent) => void)[] = [];

function getEngine(): Promise<Engine> {
  engine ??= Engine.create().then((e) => {
    e.onDeviceLost = (lost) => {
      // A listener of a page that has gone away rejects: nobody is left to tell.
      for (const listener of lostListeners) void Promise.resolve(listener(lost)).catch(() => undefined);
    };
    return e;
  }, (e: unknown) => {
    engine = null; // let a later call try again
    throw e;
  });
  return engine;
}

/** Results travel back with their typed arrays transferred, not copied. */
function transferResults(results: ClassifyResult[]): ClassifyResult[] {
  const buffers: ArrayBuffer[] = [];
  for (const r of results) {
    for (const a of [r.logits, r.features, r.tokens, r.rollout, ...(r.attention?.probs ?? [])]) if (a) buffers.push(a.buffer as ArrayBuffer);
  }
  return Comlink.transfer(results, buffers);
}

function transferFeatures(results: FeaturesResult[]): FeaturesResult[] {
  const buffers: ArrayBuffer[] = [];
  for (const r of results) {
    for (const a of [r.pooled, ...r.maps.flatMap((m) => [m.patches, m.classTokens, m.registers])]) if (a) buffers.push(a.buffer as ArrayBuffer);
  }
  return Comlink.transfer(results, buffers);
}

let stopRequested = false;

/** Where the worker's training data comes from: the site's Fashion-MNIST (or the app's, at `url`), the browser's decoders. */
const sources = (fashionMnistUrl?: string) => ({
  fashionMnist: () => fetchFashionMnist(new URL(fashionMnistUrl ?? `${import.meta.env.BASE_URL}data/fashion-mnist/`, self.location.href)),
  decode: (image: ImageInput) => decodeImage(image),
});

const DEFAULT_SEGMENT_SETTINGS: SegmentSettings = { epochs: 5, batch: 16, lr: 1e-3, warmupEpochs: 0.2, weightDecay: 0, seed: 0 };

/** Decoded image + mask pairs, matched by name and checked (size, values) before anything trains. */
async function segmentationPairs(ds: Extract<SegmentRequest['dataset'], { kind: 'pairs' }>, outputs: number): Promise<{ names: string[]; images: Pixels[]; masks: Float32Array[] }> {
  const byName = new Map<string, ImageInput>();
  for (const m of ds.masks) {
    if (byName.has(m.name)) throw new Error(`mask ${m.name} is given twice`);
    byName.set(m.name, m.image);
  }
  const imageNames = new Set(ds.images.map((i) => i.name));
  const orphan = ds.masks.find((m) => !imageNames.has(m.name));
  if (orphan) throw new Error(`mask ${orphan.name} has no image of the same name`);
  const unmasked = ds.images.find((i) => !byName.has(i.name));
  if (unmasked) throw new Error(`image ${unmasked.name} has no mask (a mask file of the same name)`);
  if (ds.images.length === 0) throw new Error('segmentation: no image and mask pairs given');
  const names: string[] = [];
  const images: Pixels[] = [];
  const masks: Float32Array[] = [];
  for (const { name, image } of ds.images) {
    const pixels = await decodeImage(image, { name });
    // Errors name it: "image: mask a.png is not an image ...".
    const maskPixels = await decodeImage(byName.get(name)!, { name: `mask ${name}` });
    if (maskPixels.width !== pixels.width || maskPixels.height !== pixels.height) {
      throw new Error(`mask ${name} is ${maskPixels.width}x${maskPixels.height}, its image is ${pixels.width}x${pixels.height}`);
    }
    const mask = outputs === 1 ? binaryMasks(maskPixels) : classMasks(maskPixels);
    checkMask(mask, outputs, pixels.width * pixels.height, name);
    names.push(name);
    images.push(pixels);
    masks.push(mask);
  }
  return { names, images, masks };
}

function pairsDataset(names: string[], images: Pixels[], masks: Float32Array[], config: ModelConfig): SegDataset {
  const S = config.imageSize;
  const all = new Float32Array(images.length * S * S);
  images.forEach((p, i) => all.set(cropMask(masks[i]!, p.width, p.height, S, config.cropPct), i * S * S));
  return { inputs: preprocess(images, config), masks: all, count: images.length, names };
}

const api: EngineApi = {
  async init() {
    return { adapter: (await getEngine()).adapter };
  },

  async onDeviceLost(listener) {
    lostListeners.push(listener);
  },

  async debugLoseDevice(when) {
    (await getEngine()).loseDeviceForTest(when);
  },

  async loadModelFromUrl(baseUrl: string, onProgress?: (p: LoadProgress) => void, options = {}) {
    return (await getEngine()).loadModelFromUrl(baseUrl, onProgress, options);
  },

  async loadModel(name, weights, config, onProgress, options) {
    return (await getEngine()).loadModel(name, weights, config, onProgress, options);
  },

  async classify(images: ImageInput[], options?: ClassifyOptions & InputSizeOption) {
    const e = await getEngine();
    const pixels = await Promise.all(images.map((img) => decodeImage(img)));
    return transferResults(await e.classifyImages(pixels, options));
  },

  async classifyTensor(input, batch, imageSize, options) {
    return transferResults(await (await getEngine()).classifyTensor(input, batch, imageSize, options));
  },

  async features(images: ImageInput[], options?: FeatureOptions & InputSizeOption) {
    const e = await getEngine();
    const pixels = await Promise.all(images.map((img) => decodeImage(img)));
    return transferFeatures(await e.featuresOfImages(pixels, options));
  },

  async featuresTensor(input, batch, imageSize, options) {
    return transferFeatures(await (await getEngine()).featuresOfTensor(input, batch, imageSize, options));
  },

  async train(request, onProgress) {
    const e = await getEngine();
    stopRequested = false;
    const settings = { ...DEFAULT_TRAIN_SETTINGS, ...request.settings };
    checkTrainSettings(settings);
    const { classes, items } = await trainingData(request.dataset, sources(request.dataset.kind === 'fashion-mnist' ? request.dataset.url : undefined));
    const key = request.checkpointKey;
    const resumeFrom = key && request.resume ? (await loadCheckpointBytes(key)) ?? undefined : undefined;
    if (request.resume && !resumeFrom) throw new Error(`training: no checkpoint stored under "${key}" to resume`);
    const result = await e.train(request.model, classes, async (config) => ({ train: dataset(items.train, config), holdout: dataset(items.holdout, config) }), settings, {
      onProgress,
      shouldStop: () => stopRequested,
      saveCheckpoint: key ? (bytes) => saveCheckpoint(key, bytes) : undefined,
    }, resumeFrom);
    // A finished run needs its checkpoint no more (a stopped one keeps it, to resume).
    if (key && !result.stopped) await deleteCheckpoint(key).catch(() => undefined);
    return result;
  },

  async trainSegmentation(request, onProgress) {
    const e = await getEngine();
    stopRequested = false;
    const settings = { ...DEFAULT_SEGMENT_SETTINGS, ...request.settings };
    checkSegmentSettings(settings);
    const head: SegHeadConfig = { hidden: [...SEED_HIDDEN], outputs: 1, ...request.head };
    checkSegHeadConfig(head);
    const ds = request.dataset;
    let prepare: (config: ModelConfig) => { train: SegDataset; holdout: SegDataset };
    if (ds.kind === 'fashion-mnist-masks') {
      if (head.outputs !== 1) throw new Error(`segmentation: the Fashion-MNIST masks are binary (outputs 1), not ${head.outputs} classes`);
      const split = await sources().fashionMnist();
      const n = split.labels.data.length;
      if (ds.train + ds.holdout > n) throw new Error(`Fashion-MNIST masks: ${ds.train} + ${ds.holdout} images asked for, the bundled split has ${n}`);
      prepare = (config) => ({
        train: fashionMnistSegmentation(split.images, 0, ds.train, config, ds.threshold),
        holdout: fashionMnistSegmentation(split.images, ds.train, ds.holdout, config, ds.threshold),
      });
    } else {
      const { names, images, masks } = await segmentationPairs(ds, head.outputs);
      const held = images.length > 1 ? Math.floor(images.length * (ds.holdoutFraction ?? 0.2)) : 0;
      const cut = images.length - held;
      prepare = (config) => ({
        train: pairsDataset(names.slice(0, cut), images.slice(0, cut), masks.slice(0, cut), config),
        holdout: pairsDataset(names.slice(cut), images.slice(cut), masks.slice(cut), config),
      });
    }
    const key = request.checkpointKey;
    const resumeFrom = key && request.resume ? (await loadCheckpointBytes(key)) ?? undefined : undefined;
    if (request.resume && !resumeFrom) throw new Error(`segmentation: no checkpoint stored under "${key}" to resume`);
    const result = await e.trainSegmentation(request.backbone, head, async (config) => prepare(config), settings, {
      onProgress,
      shouldStop: () => stopRequested,
      saveCheckpoint: key ? (bytes) => saveCheckpoint(key, bytes) : undefined,
    }, resumeFrom);
    if (key && !result.stopped) await deleteCheckpoint(key).catch(() => undefined);
    return result;
  },

  async segment(images) {
    const e = await getEngine();
    const pixels = await Promise.all(images.map((img) => decodeImage(img)));
    const masks = await e.segmentImages(pixels);
    return Comlink.transfer(masks, masks.map((m) => m.mask.buffer as ArrayBuffer));
  },

  async exportSegmenter() {
    const bytes = (await getEngine()).exportSegmenter();
    return Comlink.transfer(bytes.buffer as ArrayBuffer, [bytes.buffer as ArrayBuffer]);
  },

  async stopTraining() {
    stopRequested = true;
  },

  async exportModel() {
    const bytes = await (await getEngine()).exportModel();
    return Comlink.transfer(bytes.buffer as ArrayBuffer, [bytes.buffer as ArrayBuffer]);
  },

  async saveModel(name) {
    const e = await getEngine();
    const file = await e.exportModel();
    const info = { key: name, name, classes: e.labels(), savedAt: Date.now(), bytes: file.byteLength };
    await saveModelFile(info, file);
    return info;
  },

  listSavedModels: () => listModels(),

  async exportSavedModel(key) {
    const buffer = await (await loadModelFile(key)).file.arrayBuffer();
    return Comlink.transfer(buffer, [buffer]);
  },

  async loadSavedModel(key, onProgress) {
    // The stored Blob itself: the engine reads it a tensor at a time, now and after a device loss.
    const { info, file } = await loadModelFile(key);
    return (await getEngine()).loadModel(info.name, file, undefined, onProgress);
  },

  deleteSavedModel: (key) => deleteModel(key),

  async benchmark(suites, onLine) {
    const run: Record<BenchSuite, typeof runKernelBench> = { kernels: runKernelBench, models: runModelBench, training: runTrainingBench, segment: runSegmentBench };
    const gpu = await createGpu();
    try {
      for (const s of suites) {
        if (!run[s]) throw new Error(`benchmark: unknown suite "${s}"; known: ${Object.keys(run).join(', ')}`);
        await run[s](gpu, onLine);
      }
    } finally {
      gpu.device.destroy();
    }
  },

  async memory() {
    return (await getEngine()).memory();
  },

  async collectGarbage() {
    const gc = (self as { gc?: () => void }).gc;
    gc?.();
    return gc !== undefined;
  },
};

// Calls that use the GPU or the loaded model run one at a time, in order: a model load must not
// destroy buffers under a classification still in flight. Stopping a training, device-loss
// listeners and the test hook (which must reach a running training) and reading the list of saved
// models skip the queue.
let queue: Promise<unknown> = Promise.resolve();
function serial<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return (...args) => {
    const run = queue.then(() => fn(...args));
    queue = run.catch(() => undefined);
    return run;
  };
}
const UNQUEUED = new Set<keyof EngineApi>(['stopTraining', 'onDeviceLost', 'debugLoseDevice', 'listSavedModels', 'exportSavedModel', 'deleteSavedModel']);

/**
 * Answers the engine's calls arriving on `endpoint` (the worker's own scope by default). Call it
 * once, at the top of the worker's module.
 */
export function serveEngine(endpoint: Comlink.Endpoint = self as unknown as Comlink.Endpoint): void {
  const queued = Object.fromEntries(Object.entries(api).map(([name, fn]) => [name, UNQUEUED.has(name as keyof EngineApi) ? fn : serial(fn as (...a: unknown[]) => Promise<unknown>)]));
  Comlink.expose(queued, endpoint);
}
