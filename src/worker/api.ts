// The one typed interface between the main thread and the engine's worker. Only plain data and
// transferables cross it: images go in as Blobs, ImageBitmaps or ImageData; results come back as
// plain objects with typed arrays.
import type { ClassifyOptions, ClassifyResult, ModelInfo } from '../engine/engine';
import type { LoadProgress } from '../weights/load';

export type { ClassifyOptions, ClassifyResult, ModelInfo, LoadProgress };
export type { Prediction, AttentionResult } from '../engine/engine';

export type ImageInput = Blob | ImageBitmap | ImageData;

export interface EngineApi {
  /** Creates the GPU device; returns the adapter's description. Safe to call twice. */
  init(): Promise<{ adapter: string }>;
  /** A model folder holding model.safetensors and config.json (and the labels file it names). */
  loadModelFromUrl(baseUrl: string, onProgress?: (p: LoadProgress) => void): Promise<ModelInfo>;
  /** A checkpoint the user picked: safetensors bytes (transferred to the worker) and its config (timm, Hugging Face or ours). */
  loadModel(name: string, weights: ArrayBuffer, config: unknown, onProgress?: (p: LoadProgress) => void): Promise<ModelInfo>;
  /** Images of any size; one result per image, in order. */
  classify(images: ImageInput[], options?: ClassifyOptions): Promise<ClassifyResult[]>;
  /** A ready NCHW batch [batch, C, S, S]. */
  classifyTensor(input: Float32Array, batch: number, imageSize: number, options?: ClassifyOptions): Promise<ClassifyResult[]>;
}
