// The Web Worker that owns the GPU device and exposes the engine over comlink.
import * as Comlink from 'comlink';
import { Engine, type ClassifyOptions, type ClassifyResult } from '../engine/engine';
import { decodeImage } from '../image/decode';
import { fetchWithProgress } from '../weights/fetch';
import type { LoadProgress } from '../weights/load';
import type { EngineApi, ImageInput } from './api';

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

const api: EngineApi = {
  async init() {
    return { adapter: (await getEngine()).adapter };
  },

  async loadModelFromUrl(baseUrl: string, onProgress?: (p: LoadProgress) => void) {
    const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
    const configRes = await fetch(`${base}config.json`);
    if (!configRes.ok) throw new Error(`could not download ${base}config.json: HTTP ${configRes.status}`);
    const config = (await configRes.json()) as Record<string, unknown>;
    if (typeof config.labelsFile === 'string') {
      const labelsRes = await fetch(new URL(config.labelsFile, new URL(base, location.href)));
      if (!labelsRes.ok) throw new Error(`could not download labels ${config.labelsFile}: HTTP ${labelsRes.status}`);
      config.labels = await labelsRes.json();
    }
    const weights = await fetchWithProgress(`${base}model.safetensors`, onProgress);
    const name = typeof config.architecture === 'string' ? config.architecture : base;
    return (await getEngine()).loadModel(name, weights, config, onProgress);
  },

  async loadModel(name, weights, config, onProgress) {
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
};

Comlink.expose(api);
