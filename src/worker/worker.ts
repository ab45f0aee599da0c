// The engine's side of the worker: `serveEngine()` answers an EngineClient (client.ts) from inside
// a Web Worker, which then owns the GPU device. An app's own worker file is two lines:
//   import { serveEngine } from 'vitgpu/worker';
//   serveEngine();
// Its bundler then builds the worker with the app, which it cannot do for a worker file inside
// node_modules (see README, "Use it in your app").
import * as Comlink from 'comlink';
import { fetchFashionMnist } from '../data/idx';
import { Engine, type ClassifyOptions, type ClassifyResult, type InputSizeOption } from '../engine/engine';
import type { FeatureOptions, FeaturesResult } from '../engine/features';
import { checkTrainSettings, DEFAULT_TRAIN_SETTINGS } from '../engine/train';
import { dataset, trainingData } from '../engine/trainingData';
import { decodeImage } from '../image/decode';
import { runKernelBench } from '../bench/kernels';
import { runModelBench } from '../bench/models';
import { runTrainingBench } from '../bench/training';
import { createGpu } from '../gpu/device';
import { deleteCheckpoint, deleteModel, listModels, loadCheckpointBytes, loadModelFile, saveCheckpoint, saveModelFile } from '../training/storage';
import { checkCheckpointSize, type LoadProgress } from '../weights/load';
import type { BenchSuite, EngineApi, ImageInput } from './api';

let engine: Promise<Engine> | null = null;

function getEngine(): Promise<Engine> {
  engine ??= Engine.create().catch((e: unknown) => {
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

const api: EngineApi = {
  async init() {
    return { adapter: (await getEngine()).adapter };
  },

  async loadModelFromUrl(baseUrl: string, onProgress?: (p: LoadProgress) => void, options = {}) {
    return (await getEngine()).loadModelFromUrl(baseUrl, onProgress, options);
  },

  async loadModel(name, weights, config, onProgress, options) {
    checkCheckpointSize(weights.byteLength, options);
    return (await getEngine()).loadModel(name, weights, config, onProgress);
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
    const { file } = await loadModelFile(key);
    return Comlink.transfer(file.buffer as ArrayBuffer, [file.buffer as ArrayBuffer]);
  },

  async loadSavedModel(key, onProgress) {
    const { info, file } = await loadModelFile(key);
    return (await getEngine()).loadModel(info.name, file, undefined, onProgress);
  },

  deleteSavedModel: (key) => deleteModel(key),

  async benchmark(suites, onLine) {
    const run: Record<BenchSuite, typeof runKernelBench> = { kernels: runKernelBench, models: runModelBench, training: runTrainingBench };
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
};

// Calls that use the GPU or the loaded model run one at a time, in order: a model load must not
// destroy buffers under a classification still in flight. Stopping a training and reading the
// list of saved models skip the queue.
let queue: Promise<unknown> = Promise.resolve();
function serial<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return (...args) => {
    const run = queue.then(() => fn(...args));
    queue = run.catch(() => undefined);
    return run;
  };
}
const UNQUEUED = new Set<keyof EngineApi>(['stopTraining', 'listSavedModels', 'exportSavedModel', 'deleteSavedModel']);

/**
 * Answers the engine's calls arriving on `endpoint` (the worker's own scope by default). Call it
 * once, at the top of the worker's module.
 */
export function serveEngine(endpoint: Comlink.Endpoint = self as unknown as Comlink.Endpoint): void {
  const queued = Object.fromEntries(Object.entries(api).map(([name, fn]) => [name, UNQUEUED.has(name as keyof EngineApi) ? fn : serial(fn as (...a: unknown[]) => Promise<unknown>)]));
  Comlink.expose(queued, endpoint);
}
