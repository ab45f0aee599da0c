// The Web Worker that owns the GPU device and exposes the engine over comlink.
import * as Comlink from 'comlink';
import { fetchFashionMnist } from '../data/idx';
import { Engine, type ClassifyOptions, type ClassifyResult } from '../engine/engine';
import { checkTrainSettings, DEFAULT_TRAIN_SETTINGS } from '../engine/train';
import { dataset, trainingData } from '../engine/trainingData';
import { decodeImage } from '../image/decode';
import { runKernelBench } from '../bench/kernels';
import { runModelBench } from '../bench/models';
import { runTrainingBench } from '../bench/training';
import { createGpu } from '../gpu/device';
import { deleteCheckpoint, deleteModel, listModels, loadCheckpointBytes, loadModelFile, saveCheckpoint, saveModelFile } from '../training/storage';
import { fetchWithProgress } from '../weights/fetch';
import { parseJsonText } from '../weights/config';
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

let stopRequested = false;

/** Where the worker's training data comes from: the site's Fashion-MNIST, the browser's decoders. */
const sources = {
  fashionMnist: () => fetchFashionMnist(new URL(`${import.meta.env.BASE_URL}data/fashion-mnist/`, self.location.origin)),
  decode: (image: ImageInput) => decodeImage(image),
};

const api: EngineApi = {
  async init() {
    return { adapter: (await getEngine()).adapter };
  },

  async loadModelFromUrl(baseUrl: string, onProgress?: (p: LoadProgress) => void, options = {}) {
    const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
    const configRes = await fetch(`${base}config.json`);
    if (!configRes.ok) throw new Error(`could not download ${base}config.json: HTTP ${configRes.status}`);
    const config = parseJsonText(await configRes.text());
    if (typeof config.labelsFile === 'string') {
      const labelsRes = await fetch(new URL(config.labelsFile, new URL(base, location.href)));
      if (!labelsRes.ok) throw new Error(`config: its labelsFile ${config.labelsFile} could not be read (HTTP ${labelsRes.status})`);
      try {
        config.labels = JSON.parse(await labelsRes.text());
      } catch (e) {
        throw new Error(`config: its labelsFile ${config.labelsFile} is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
      }
    }
    const weights = await fetchWithProgress(`${base}model.safetensors`, onProgress, options);
    const name = typeof config.architecture === 'string' ? config.architecture : base;
    return (await getEngine()).loadModel(name, weights, config, onProgress);
  },

  async loadModel(name, weights, config, onProgress, options) {
    checkCheckpointSize(weights.byteLength, options);
    return (await getEngine()).loadModel(name, weights, config, onProgress);
  },

  async classify(images: ImageInput[], options?: ClassifyOptions) {
    const e = await getEngine();
    const pixels = await Promise.all(images.map((img) => decodeImage(img)));
    return transferResults(await e.classifyImages(pixels, options));
  },

  async classifyTensor(input, batch, imageSize, options) {
    return transferResults(await (await getEngine()).classifyTensor(input, batch, imageSize, options));
  },

  async train(request, onProgress) {
    const e = await getEngine();
    stopRequested = false;
    const settings = { ...DEFAULT_TRAIN_SETTINGS, ...request.settings };
    checkTrainSettings(settings);
    const { classes, items } = await trainingData(request.dataset, sources);
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
const queued = Object.fromEntries(Object.entries(api).map(([name, fn]) => [name, UNQUEUED.has(name as keyof EngineApi) ? fn : serial(fn as (...a: unknown[]) => Promise<unknown>)]));

Comlink.expose(queued);
