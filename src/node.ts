// The library's Node entry (`vitgpu/node`): the same DOM-free engine as in the browser, on WebGPU
// through Dawn (the optional `webgpu` package), with images and models read from files.
import { Engine } from './engine/engine';
import { createGpu, NoAdapterError, type CreateGpuOptions, type Gpu } from './gpu/device';
import { noAdapterMessage, nodeGpu } from './node/dawn';

export { Engine, topK } from './engine/engine';
export type { AttentionResult, ClassifyOptions, ClassifyResult, DeviceLostEvent, ModelInfo, Prediction, TestDeviceLoss } from './engine/engine';
export type { TrainHooks, TrainProgress, TrainSettings } from './engine/train';
export type { Dataset } from './engine/dataset';
export type { LoadProgress } from './weights/load';
export type { Gpu, MatmulVariant } from './gpu/device';
export { preprocess, type Pixels, type PreprocessConfig } from './image/preprocess';
export { attentionRollout, type RolloutOptions } from './engine/attentionMaps';
export { PRESETS, type AnyConfig, type PresetName } from './models/registry';
export { nodeGpu, pollGpuGently } from './node/dawn';
export { decodeImageBytes, readImage } from './node/image';
export { loadModelFromPath } from './node/model';

/** A device of its own on Dawn's best adapter (a real GPU before SwiftShader). */
export async function createNodeGpu(options: Omit<CreateGpuOptions, 'gpu'> = {}): Promise<Gpu> {
  return explainNoAdapter(async () => createGpu({ ...options, gpu: await nodeGpu() }));
}

/** An engine on a Dawn device of its own, re-created if it is lost. */
export async function createEngine(options: Omit<CreateGpuOptions, 'gpu'> = {}): Promise<Engine> {
  return explainNoAdapter(async () => Engine.create({ ...options, gpu: await nodeGpu() }));
}

/** The browser's "no adapter" says nothing useful in Node: say what to install instead. */
async function explainNoAdapter<T>(create: () => Promise<T>): Promise<T> {
  try {
    return await create();
  } catch (e) {
    throw e instanceof NoAdapterError ? new Error(noAdapterMessage()) : e;
  }
}
