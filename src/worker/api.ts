// The one typed interface between the main thread and the engine's worker. Only plain data and
// transferables cross it: images go in as Blobs, ImageBitmaps or ImageData; results come back as
// plain objects with typed arrays.
import type { IdxSelection } from '../data/idx';
import type { ClassifyOptions, ClassifyResult, DeviceLostEvent, InputSizeOption, MaskResult, ModelInfo, SegmenterInfo, TestDeviceLoss, UrlModelInfo } from '../engine/engine';
import type { GpuMemory } from '../gpu/buffers';
import type { FeatureMap, FeatureOptions, FeaturesResult } from '../engine/features';
import type { SegmentProgress, SegmentSettings } from '../engine/segment';
import type { ImageSize } from '../graph/family';
import type { TrainProgress, TrainSettings } from '../engine/train';
import type { SegHeadConfig } from '../graph/segment';
import type { SegmentationMetrics } from '../training/segmentation';
import type { PresetName } from '../models/registry';
import type { SavedModel } from '../training/storage';
import type { LoadOptions, LoadProgress } from '../weights/load';
import type { CacheReport } from '../weights/remote';

export type {
  CacheReport, ClassifyOptions, ClassifyResult, DeviceLostEvent, TestDeviceLoss, FeatureMap, FeatureOptions, FeaturesResult, ImageSize, InputSizeOption, ModelInfo, UrlModelInfo,
  LoadOptions, LoadProgress, SavedModel, TrainProgress, TrainSettings,
};
export type { GpuMemory };
export type { MaskResult, SegHeadConfig, SegmenterInfo, SegmentationMetrics, SegmentProgress, SegmentSettings };
export type { Prediction, AttentionResult } from '../engine/engine';

export type ImageInput = Blob | ImageBitmap | ImageData;

export interface TrainRequest {
  /** Fine-tune the loaded model ('current') or train a preset from scratch. */
  model: 'current' | PresetName;
  dataset:
    | { kind: 'images'; classes: { name: string; images: ImageInput[] }[]; /** Share of each class held out for evaluation (default 0.2). */ holdoutFraction?: number }
    | {
      kind: 'fashion-mnist';
      /** The folder holding t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (default: data/fashion-mnist/ under the site's root). */
      url?: string;
      /** Images of the bundled 10,000-image split used for training, from its start. */ train?: number;
      /** Held out: the images after the training ones (the first ones with `perClass`). */ holdout: number;
      /** Instead of `train`: the first `perClass` images of each class after the held-out ones. */ perClass?: number;
    }
    | { kind: 'idx'; /** Names by label (default: the labels as numbers). */ classes?: string[]; train: IdxSplit; holdout: IdxSplit };
  settings?: Partial<TrainSettings>;
  /** Where a checkpoint is kept in the browser after every epoch. */
  checkpointKey?: string;
  /** Continue the run stored under checkpointKey. */
  resume?: boolean;
}

/** Grey images in IDX files (MNIST, Fashion-MNIST), raw or gzipped, and which of them to use. */
export interface IdxSplit extends IdxSelection {
  images: ArrayBuffer;
  labels: ArrayBuffer;
}

/** An image or a mask with the file name that pairs them. */
export interface NamedImage { name: string; image: ImageInput }

/** Training a dense head (segmentation) on a frozen backbone. */
export interface SegmentRequest {
  /** The loaded model, or a preset at its seeded initialisation, as the frozen backbone. */
  backbone: 'current' | PresetName;
  /** Hidden widths (default the seed's [256, 128]; [] is the linear probe) and outputs (1: a binary mask, the default; K: classes). */
  head?: Partial<SegHeadConfig>;
  dataset:
    | {
      /** Fashion-MNIST's bundled split with masks from its own pixels: garment where the grey value is above `threshold` (default 25). */
      kind: 'fashion-mnist-masks'; train: number; holdout: number; threshold?: number;
    }
    | {
      /**
       * Images and masks paired by name (each image's mask has its file name). A binary mask is
       * foreground where any colour channel is 128 or more; with K classes the red channel is the
       * class. Masks are as large as their images. The last `holdoutFraction` (default 0.2) of the
       * pairs are held out.
       */
      kind: 'pairs'; images: NamedImage[]; masks: NamedImage[]; holdoutFraction?: number;
    };
  settings?: Partial<SegmentSettings>;
  checkpointKey?: string;
  resume?: boolean;
}

/** `steps` 0: stopped before the first step, and the previous segmenter (or none) stays. */
export interface SegmentResult { segmenter: SegmenterInfo | null; eval: SegmentationMetrics | null; stopped: boolean; steps: number }

/**
 * `steps`: optimizer steps the run took; 0 when it was stopped before its first, and then `model`
 * is the one loaded before, unchanged.
 */
export interface TrainResult { model: ModelInfo; evalAccuracy: number; stopped: boolean; steps: number }

/**
 * Calls run one at a time, in the order they were made (a model load must not free buffers under
 * a classification in flight): a classification asked for during a training is answered when the
 * training ends, by the model it trained, and leaves the training as it would have been. A page
 * that must not look hung meanwhile says so itself (the demo disables its GPU controls while a
 * training runs). `stopTraining`, `onDeviceLost`, `debugLoseDevice` and the calls on kept models
 * that do not load them skip the queue.
 */
export interface EngineApi {
  /** Creates the GPU device; returns the adapter's description. Safe to call twice. */
  init(): Promise<{ adapter: string }>;
  /**
   * Calls `listener` whenever the worker's GPU device is lost, as it happens: the reason, and what
   * the engine does about it (it re-creates the device and the model from the checkpoint it was loaded from, retries
   * an interrupted classification once, and a training goes on from its last finished epoch's
   * checkpoint, saying so in a progress event with `recovered`).
   */
  onDeviceLost(listener: (lost: DeviceLostEvent) => void): Promise<void>;
  /**
   * For tests: loses the worker's GPU device as a driver reset would (see Engine.loseDeviceForTest):
   * 'now', 'next-submit' (between the next GPU work and its readback), or `{ afterSteps: n }`
   * (the same, once the running or next training has taken n more steps).
   */
  debugLoseDevice(when: TestDeviceLoss): Promise<void>;
  /**
   * A model folder holding model.safetensors and config.json (and the labels file it names). The
   * checkpoint downloads into a Blob (on disk once large) and is streamed from it to the GPU, one
   * tensor at a time. With options.maxBytes, a larger checkpoint is refused by its Content-Length,
   * before it is downloaded. The files are kept in the Cache API once loaded,
   * and a later call reads them from there, offline too (options.cache: false turns this off);
   * `cache` in the result says what happened, with a warning when they could not be kept.
   */
  loadModelFromUrl(baseUrl: string, onProgress?: (p: LoadProgress) => void, options?: LoadOptions): Promise<UrlModelInfo>;
  /**
   * A checkpoint the user picked, and its config (timm, Hugging Face or ours); without one, the
   * config this engine writes into its exports. A File or Blob crosses to the worker as a
   * reference and is streamed from there to the GPU, one tensor at a time: it is never read whole,
   * and it is read again after a device loss. Bytes (an ArrayBuffer) are kept as they are.
   */
  loadModel(name: string, weights: Blob | ArrayBuffer, config?: unknown, onProgress?: (p: LoadProgress) => void, options?: LoadOptions): Promise<ModelInfo>;
  /**
   * Images of any size; one result per image, in order. A file whose header declares more than
   * MAX_DECODED_PIXELS (src/limits.ts) is refused before decoding; larger ones are downscaled.
   */
  classify(images: ImageInput[], options?: ClassifyOptions & InputSizeOption): Promise<ClassifyResult[]>;
  /**
   * A ready NCHW batch [batch, C, S, S]. Refused before any GPU work when S makes more than
   * MAX_TOKENS_PER_IMAGE tokens or a value is NaN or infinite; logits that come out non-finite
   * are refused too, not returned.
   */
  classifyTensor(input: Float32Array, batch: number, imageSize: ImageSize, options?: ClassifyOptions): Promise<ClassifyResult[]>;
  /**
   * Backbone features of images of any size, without the classifier: the outputs of the blocks
   * asked for (class tokens, registers, the patch map), before or after the final norm, and the
   * pooled features. Works for a backbone without a classifier (numClasses 0).
   */
  features(images: ImageInput[], options?: FeatureOptions & InputSizeOption): Promise<FeaturesResult[]>;
  /** Features of a ready NCHW batch [batch, C, H, W]; checked as classifyTensor's. */
  featuresTensor(input: Float32Array, batch: number, imageSize: ImageSize, options?: FeatureOptions): Promise<FeaturesResult[]>;
  /** Trains in the worker; the trained model becomes the loaded one. */
  train(request: TrainRequest, onProgress?: (p: TrainProgress) => void): Promise<TrainResult>;
  /** Trains a dense head on a frozen backbone; the loaded model stays as it is. */
  trainSegmentation(request: SegmentRequest, onProgress?: (p: SegmentProgress) => void): Promise<SegmentResult>;
  /** Masks from the trained segmentation head, one per image, over the backbone's input (see MaskResult). */
  segment(images: ImageInput[]): Promise<MaskResult[]>;
  /** The backbone and the head (`seg_head.*`) as safetensors. */
  exportSegmenter(): Promise<ArrayBuffer>;
  /** Asks a running `train` or `trainSegmentation` to stop after its current step. */
  stopTraining(): Promise<void>;
  /** The loaded model as safetensors with timm names. */
  exportModel(): Promise<ArrayBuffer>;
  /** Keeps the loaded model in the browser (IndexedDB) under `name`, replacing one of that name. */
  saveModel(name: string): Promise<SavedModel>;
  /** Models kept in the browser, newest first. */
  listSavedModels(): Promise<SavedModel[]>;
  /** A kept model's safetensors, without loading it. */
  exportSavedModel(key: string): Promise<ArrayBuffer>;
  loadSavedModel(key: string, onProgress?: (p: LoadProgress) => void): Promise<ModelInfo>;
  deleteSavedModel(key: string): Promise<void>;
  /**
   * Runs benchmark suites on a device of their own; each result line is passed to `onLine`. The
   * `models` suite reads DeiT-tiny from models/deit-tiny/ under the site's root, as the demo serves it.
   */
  benchmark(suites: BenchSuite[], onLine: (line: string) => void): Promise<void>;
  /** The GPU buffers the engine holds and their bytes (Engine.memory); queued behind the calls before it. */
  memory(): Promise<GpuMemory>;
  /**
   * For tests and benchmarks that measure the worker's JS heap: a full garbage collection where
   * the browser exposes `gc` (Chromium started with --js-flags=--expose-gc); false where it does not.
   */
  collectGarbage(): Promise<boolean>;
}

export type BenchSuite = 'kernels' | 'models' | 'training' | 'segment';
