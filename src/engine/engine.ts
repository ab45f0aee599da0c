// The engine: one GPU device, one loaded model, forward plans cached per (batch, image size,
// attention), training that replaces the model with its result. DOM-free: it runs in the Web
// Worker (src/worker), in a page, or in Node with Dawn. One call at a time: a call may destroy what
// another in flight uses (a model load, an evicted plan); the worker queues them.
import { createGpu, wrapDevice, type CreateGpuOptions, type Gpu } from '../gpu/device';
import type { GpuMemory } from '../gpu/buffers';
import { withErrorScopes } from '../gpu/errors';
import { readTensor, readTensors } from '../gpu/tensor';
import { largestFittingBatch } from '../graph/fit';
import { planForward, type ForwardOptions, type ForwardPlan } from '../graph/forward';
import type { BlockAttention, ImageSize } from '../graph/family';
import type { HostWeights, Model } from '../graph/model';
import type { Tensor } from '../gpu/tensor';
import { formatBytes } from '../limits';
import { preprocess, type Pixels } from '../image/preprocess';
import { fineTuneStart, initWeights } from '../models/init';
import { createModel, familyOf, PRESETS, type AnyConfig, type PresetName } from '../models/registry';
import { Model as GpuModel } from '../graph/model';
import { exportWeights } from '../training/checkpoint';
import { openCheckpoint, type LoadOptions, type LoadProgress, type OpenedCheckpoint } from '../weights/load';
import { parseSafetensors } from '../weights/safetensors';
import { toByteSource, type CheckpointInput } from '../weights/source';
import { loadModelFolder, type CacheReport } from '../weights/remote';
import { attentionRollout, type RolloutOptions } from './attentionMaps';
import { checkInput, checkLogits } from './checks';
import { resolveBlocks, splitTokens, type FeatureOptions, type FeaturesResult } from './features';
import type { Dataset } from './dataset';
import { train, type Recovered, type TrainHooks, type TrainProgress, type TrainSettings } from './train';
import { initSegHead, planSegmentation, SegHead, type SegHeadConfig } from '../graph/segment';
import type { SegmentationMetrics } from '../training/segmentation';
import { patchTokens, tokenLayout, trainSegHead, type SegDataset, type SegmentHooks, type SegmentProgress, type SegmentSettings } from './segment';

export interface ModelInfo {
  name: string;
  config: Omit<AnyConfig, 'labels'>;
  /** The model family (`vit`, `swin`). */
  family: string;
  /** Attention heads of each block, in forward order: its length is the number of blocks. */
  blockHeads: number[];
  parameters: number;
  /** GPU bytes held by the parameters. */
  bytes: number;
  hasLabels: boolean;
}

/** A model loaded from a URL, and what the model cache did for it. */
export interface UrlModelInfo extends ModelInfo { cache: CacheReport }

export interface ClassifyOptions {
  /** How many classes to return, most probable first (default 5). */
  topK?: number;
  logits?: boolean;
  /** What the (first) classifier head reads: the class token's features, or the pooled ones. */
  features?: boolean;
  /** Every patch token after the final norm, [patches, dim] per image, on the last block's map (dense heads, segmentation). */
  tokens?: boolean;
  /** Every layer's attention probabilities. */
  attention?: boolean;
  /** Attention rollout as a patch-grid map (implies computing attention). */
  rollout?: boolean | RolloutOptions;
}

/** Where images are preprocessed to: a side, or [height, width] (a ViT resamples its position embedding as timm does). Default: the model's size. */
export interface InputSizeOption {
  imageSize?: ImageSize;
}

export interface Prediction { index: number; label: string; prob: number }

export interface AttentionResult {
  layers: number;
  /** Heads and tokens per window of the first layer (the same in every layer of a ViT). */
  heads: number;
  tokens: number;
  prefixTokens: number;
  /** Patch grid (rows, columns) of the first layer. */
  grid: [number, number];
  /**
   * Each layer's shape and where it looks: a ViT attends over the whole image (one window of its
   * prefix tokens and patches); a Swin within windows of its stage's map, shifted on odd blocks.
   */
  shapes: (BlockAttention & { heads: number; windows: number; tokens: number })[];
  /** One (windows, heads, tokens, tokens) array per layer. */
  probs: Float32Array[];
}

export interface ClassifyResult {
  top: Prediction[];
  logits?: Float32Array;
  features?: Float32Array;
  /** [patches, dim], row-major over the last block's token map. */
  tokens?: Float32Array;
  attention?: AttentionResult;
  /** Rollout over the patch grid (row-major), scaled to a maximum of 1. */
  rollout?: Float32Array;
}

/** The trained dense head and the backbone it reads: what `segment` runs and `exportSegmenter` writes. */
export interface SegmenterInfo {
  name: string;
  /** The backbone's family and input side. */
  family: string;
  imageSize: number;
  /** The backbone's centre crop (preprocessing): the share of the short side it sees. */
  cropPct: number;
  head: SegHeadConfig;
  /** The held-out pairs' scores after the last epoch (null without held-out pairs). */
  eval: SegmentationMetrics | null;
}

/** A predicted mask over the model's input (size x size, row-major). */
export interface MaskResult {
  size: number;
  /** Binary head: the foreground's probability per pixel; K classes: the most probable class per pixel. */
  mask: Float32Array;
}

/** What the engine tells the app when its device is lost (onDeviceLost). */
export interface DeviceLostEvent {
  /** The browser's message (or reason). `destroyed` counts too: any loss the engine did not cause itself is a loss. */
  reason: string;
  /**
   * 'recreate': the engine makes a new device by itself, uploads the model again from where its weights came
   * when a call first needs it, and retries what the loss interrupted (a classification or masks
   * once; a training from its last finished epoch's checkpoint). 'replace': calls fail until the
   * app calls replaceDevice.
   */
  recovery: 'recreate' | 'replace';
  /** The same in a sentence for the user. */
  message: string;
}

/** When `loseDeviceForTest` loses the device. */
export type TestDeviceLoss = 'now' | 'next-submit' | { afterSteps: number };

/**
 * How long a failed call waits for the device's lost promise before taking the failure for what it
 * says: the browser may report the loss a moment after the readback it broke.
 */
const LOSS_REPORT_MS = 100;

/** How the engine uses a device the app hands it (see CreateGpuOptions). */
export type DeviceOptions = Pick<CreateGpuOptions, 'matmulVariant' | 'bufferLimits'>;

/** Largest batch run in one plan; bigger requests run in chunks. */
const MAX_PLAN_BATCH = 16;
/** Forward plans kept for reuse; the least recently used one is destroyed past this. */
const MAX_PLANS = 4;

/**
 * What the loaded model is uploaded again from after a device loss: the checkpoint it was streamed
 * from (a File, a cached download, bytes in memory: read again, never copied), or, for a model
 * trained here, its weights as read back from the GPU.
 */
type WeightsOrigin = { checkpoint: OpenedCheckpoint } | { weights: HostWeights };

export class Engine {
  /** The loaded model's GPU copy; null after a device change until a call needs it (loadedModel). */
  private model: Model | null = null;
  private host: { name: string; config: AnyConfig; origin: WeightsOrigin; info: ModelInfo } | null = null;
  /** By what they were planned for (batch, image size, outputs), least recently used first. */
  private readonly plans = new Map<string, ForwardPlan>();
  /** The largest batch that fits, by model and plan options (see fittingBatch). */
  private readonly fits = new WeakMap<Model, Map<string, number>>();
  /** The dense head with its backbone: host copies (weights of both by name), and their GPU copies while the device lives. */
  private segmenter: { info: SegmenterInfo; config: AnyConfig; weights: HostWeights } | null = null;
  private segGpu: { model: Model; head: SegHead } | null = null;
  /** Why the device was lost, until it is re-created or replaced. */
  private lostReason: string | null = null;
  /** Set while destroy() ends the device, so its loss is not reported. */
  private destroying = false;
  /** Set while a training runs (acrossLosses): a loss then resumes it from its checkpoint. */
  private training = false;
  /** Training steps left before loseDeviceForTest loses the device, or null. */
  private testLossAfterSteps: number | null = null;
  /**
   * Called when the device is lost. An engine that created its device re-creates it on the next
   * call (a running training at once); one given the app's device (fromDevice) waits for replaceDevice.
   */
  onDeviceLost: ((lost: DeviceLostEvent) => void) | null = null;

  /** `gpuOptions` is how to re-create an engine-owned device; null when the app owns it. */
  private constructor(private gpu: Gpu, private gpuOptions: CreateGpuOptions | null) {
    this.watch(gpu);
  }

  /** An engine on a device of its own, which it re-creates when it is lost. */
  static async create(options: CreateGpuOptions = {}): Promise<Engine> {
    return new Engine(await createGpu(options), options);
  }

  /**
   * An engine on a device the app owns and shares. The engine never destroys it; when it is lost
   * (destroyed by the app included), onDeviceLost is told and every call fails until the app
   * hands over a new device with replaceDevice.
   */
  static fromDevice(device: GPUDevice, options: DeviceOptions = {}): Engine {
    return new Engine(wrapDevice(device, device.adapterInfo, options.matmulVariant, options.bufferLimits), null);
  }

  /**
   * Moves the engine to `device` (the app's from now on): the loaded model is uploaded again from
   * where its weights came (WeightsOrigin), and cached plans are dropped. The previous device is left to its owner, or
   * destroyed if the engine created it.
   */
  async replaceDevice(device: GPUDevice, options: DeviceOptions = {}): Promise<void> {
    const why = this.lostReason !== null ? 'was lost with the GPU device' : 'was moved to another GPU device';
    this.releaseDevice();
    if (this.gpuOptions !== null) this.endDevice(this.gpu);
    this.gpuOptions = null;
    this.gpu = wrapDevice(device, device.adapterInfo, options.matmulVariant, options.bufferLimits);
    this.lostReason = null;
    this.watch(this.gpu);
    if (this.host) this.model = await this.uploadAgain(this.gpu, why);
  }

  /**
   * Frees what the current device holds (plans, the model's and the segmenter's GPU copies); their
   * host side stays, to be uploaded again. Destroying the buffers of a lost device is harmless; on
   * a live one it frees them now.
   */
  private releaseDevice(): void {
    this.releaseModel();
    this.releaseSegmenter();
  }

  private watch(gpu: Gpu): void {
    void gpu.device.lost.then((info) => {
      // Only the engine's own destroy() is not a loss: a driver reset, the app or a test may
      // destroy the device too (reason `destroyed`), and calls on it then fail the same way.
      if (this.gpu !== gpu || this.destroying) return;
      const reason = info.message || info.reason || 'unknown reason';
      this.lostReason = reason;
      const recovery = this.gpuOptions === null ? 'replace' : 'recreate';
      const next = recovery === 'replace' ? 'calls fail until the app hands the engine a new one (replaceDevice); the model then comes back from its checkpoint, read again'
        : this.training ? 'the engine re-creates it and the model, and the training goes on from its last finished epoch\'s checkpoint'
          : 'the engine re-creates it at its next call and uploads the model again from its checkpoint, read again';
      this.onDeviceLost?.({ reason, recovery, message: `the GPU device was lost (${reason}): ${next}` });
    });
  }

  /**
   * For tests: loses the device the way a driver reset does. The current device is destroyed
   * behind the engine's back, so its lost promise fires and the engine notices as with any real
   * loss: 'now'; 'next-submit' right after the next work is submitted to the GPU (a
   * classification's forward pass, a training step), before its results are read back;
   * `{ afterSteps: n }` the same once a training run has taken n more steps.
   */
  loseDeviceForTest(when: TestDeviceLoss = 'now'): void {
    const { device } = this.gpu;
    if (when === 'now') {
      device.destroy();
    } else if (when === 'next-submit') {
      const { queue } = device;
      const submit = queue.submit.bind(queue);
      queue.submit = (buffers) => {
        Reflect.deleteProperty(queue, 'submit'); // the prototype's again
        submit(buffers);
        device.destroy();
      };
    } else {
      if (!Number.isInteger(when.afterSteps) || when.afterSteps < 1) throw new Error(`loseDeviceForTest: afterSteps must be a positive integer, got ${when.afterSteps}`);
      this.testLossAfterSteps = when.afterSteps;
    }
  }

  /**
   * Whether `gpu`, the device some work started on, was lost since. After a failure it waits a
   * moment for the lost promise (see LOSS_REPORT_MS).
   */
  private async lostSince(gpu: Gpu, failed: boolean): Promise<boolean> {
    if (failed && this.gpu === gpu && this.lostReason === null) {
      await Promise.race([gpu.device.lost, new Promise((resolve) => setTimeout(resolve, LOSS_REPORT_MS))]);
    }
    return this.gpu !== gpu || this.lostReason !== null;
  }

  /**
   * Runs GPU work that may run again from the start. When the device is lost under it (the work
   * fails, or its readback cannot be trusted), it runs once more on a re-created device; an
   * app-owned device, or a second loss, fails with the loss named.
   */
  private async retriedOnLoss<R>(what: string, work: () => Promise<R>): Promise<R> {
    for (let attempt = 1; ; attempt++) {
      const gpu = await this.device();
      try {
        const result = await work();
        if (!(await this.lostSince(gpu, false))) return result;
      } catch (e) {
        if (!(await this.lostSince(gpu, true))) throw e;
      }
      if (this.gpuOptions === null) throw new Error(`${what}: the GPU device was lost (${this.lostReason}) during the call: hand the engine a new one with replaceDevice(device), then call again`);
      if (attempt === 2) throw new Error(`${what}: the GPU device was lost (${this.lostReason}) during the call, and again when it was retried on a new device`);
    }
  }

  private endDevice(gpu: Gpu): void {
    this.destroying = true;
    try {
      gpu.device.destroy();
    } finally {
      this.destroying = false;
    }
  }

  get adapter(): string {
    return this.gpu.name;
  }

  /**
   * Loads a safetensors checkpoint with its JSON config; the previous model stays if this fails.
   * The file is streamed: its header is checked first, then each tensor is read, checked and
   * uploaded in turn (progress in bytes of the file), so a File or Blob is never read whole. The
   * engine keeps `weights` (not a copy) to upload again after a device loss.
   */
  async loadModel(name: string, weights: CheckpointInput, config: unknown, onProgress?: (p: LoadProgress) => void, options: LoadOptions = {}): Promise<ModelInfo> {
    onProgress?.({ stage: 'parse', loaded: 0, total: 1 });
    const checkpoint = await openCheckpoint(toByteSource(weights), config, options);
    onProgress?.({ stage: 'parse', loaded: 1, total: 1 });
    const model = await this.streamIn(await this.device(), checkpoint, onProgress);
    return this.keep(model, name, checkpoint.config, { checkpoint });
  }

  /** Makes `model` the loaded model, in place of the one before. */
  private keep(model: Model, name: string, config: AnyConfig, origin: WeightsOrigin): ModelInfo {
    this.dropModel();
    const { labels, ...rest } = config;
    const info: ModelInfo = {
      name, config: rest, family: model.family.name, blockHeads: model.family.blockHeads(model.config),
      parameters: model.parameterCount, bytes: model.bytes, hasLabels: !!labels,
    };
    this.model = model;
    this.host = { name, config, origin, info };
    return info;
  }

  /**
   * Loads the model folder at `baseUrl` (model.safetensors, config.json and the labels file it
   * names), from the model cache when it holds it; a download is kept there once it has loaded.
   */
  async loadModelFromUrl(baseUrl: string, onProgress?: (p: LoadProgress) => void, options: LoadOptions = {}): Promise<UrlModelInfo> {
    const { result, cache } = await loadModelFolder(baseUrl, (name, weights, config) => this.loadModel(name, weights, config, onProgress, options), onProgress, options);
    return { ...result, cache };
  }

  /**
   * Trains the loaded model on `classes` (its head keeps the rows of the classes it knows by name;
   * the others start fresh, see fineTuneStart) or a preset from scratch, then keeps the result as
   * the loaded model, unless the run stopped before its first step. `prepare` turns the model's
   * config into datasets (preprocessing needs the model's input size). A lost device does not end
   * the run: it goes on from its last finished epoch (see acrossLosses).
   */
  async train(
    from: 'current' | PresetName,
    classes: string[],
    prepare: (config: AnyConfig) => Promise<{ train: Dataset; holdout: Dataset }>,
    settings: TrainSettings,
    hooks: TrainHooks = {},
    resumeFrom?: Uint8Array,
  ): Promise<{ model: ModelInfo; evalAccuracy: number; stopped: boolean; steps: number }> {
    await this.device();
    let name: string;
    let config: AnyConfig;
    let weights: HostWeights;
    if (from === 'current') {
      const host = this.requireHost();
      name = `${host.name} fine-tuned`;
      ({ config, weights } = fineTuneStart(host.config, await this.hostWeights(), classes, settings.seed));
    } else {
      const preset = PRESETS[from];
      if (!preset) throw new Error(`training: unknown preset "${from}"; known: ${Object.keys(PRESETS).join(', ')}`);
      name = from;
      config = { ...preset, numClasses: classes.length, labels: classes };
      weights = initWeights(config, settings.seed);
    }
    const data = await prepare(config);
    const run = await this.acrossLosses('training', settings.epochs, resumeFrom, hooks, (base): TrainProgress => ({ ...base, accuracy: Number.NaN }), (p) => (p.evalAccuracy === undefined ? undefined : { evalAccuracy: p.evalAccuracy }), async (from, runHooks) => {
      const model = await this.upload(await this.device(), config, weights);
      try {
        return { ...(await train(model, name, data, settings, runHooks, from)), model };
      } catch (e) {
        model.destroy();
        throw e;
      }
    });
    const { model } = run;
    if (run.steps === 0) {
      // Stopped before its first step: the loaded model stays.
      model.destroy();
      return { model: this.info(), evalAccuracy: Number.NaN, stopped: true, steps: 0 };
    }
    let trained: HostWeights;
    try {
      trained = await model.download();
    } catch (e) {
      model.destroy();
      throw e;
    }
    return { model: this.keep(model, name, config, { weights: trained }), evalAccuracy: run.evalAccuracy, stopped: run.stopped, steps: run.steps };
  }

  /**
   * Runs a training to its end across device losses. `attempt` trains from a checkpoint (none: from
   * the start) and cleans up after itself when it fails. When the device is lost under an attempt,
   * the next starts on a re-created device from the last finished epoch's checkpoint, kept in
   * memory whether or not `hooks` store it, and a progress event (`restart` completes it) says so.
   * It fails naming the loss on an app-owned device, or when the device is lost twice from one
   * checkpoint: the run itself may be what loses it (a GPU reset on a dispatch that runs too long),
   * and the stored checkpoint stays to resume. `steps` counts the run's steps over all attempts.
   * `evaluation` picks an epoch's evaluation out of its progress event, as the result carries it:
   * an attempt that finishes no epoch (stopped right after a loss) ends with that of the
   * checkpoint it started from, as a run never lost ends with its last finished epoch's.
   */
  private async acrossLosses<P extends { stepsPerEpoch: number; imagesPerSecond: number; loss: number; features?: unknown }, R extends { steps: number }>(
    what: string,
    epochs: number,
    resumeFrom: Uint8Array | undefined,
    hooks: { onProgress?: (p: P) => void; saveCheckpoint?: (bytes: Uint8Array, epoch: number) => Promise<void>; shouldStop?: () => boolean },
    restart: (base: Pick<TrainProgress, 'epoch' | 'epochs' | 'step' | 'stepsPerEpoch' | 'loss' | 'imagesPerSecond' | 'secondsLeft'> & { recovered: Recovered }) => P,
    evaluation: (p: P) => Partial<R> | undefined,
    attempt: (from: Uint8Array | undefined, hooks: { onProgress: (p: P) => void; saveCheckpoint: (bytes: Uint8Array, epoch: number) => Promise<void>; shouldStop?: () => boolean; deviceLost: () => string | null }) => Promise<R>,
  ): Promise<R> {
    let last: { bytes: Uint8Array | undefined; epoch: number; step: number; evaluation?: Partial<R> } = { bytes: resumeFrom, ...checkpointPosition(resumeFrom) };
    const firstStep = last.step;
    let lastProgress: P | null = null;
    const runHooks = {
      shouldStop: hooks.shouldStop,
      onProgress: (p: P) => {
        lastProgress = p;
        // An epoch's evaluation is reported right after its checkpoint is saved: it goes with it.
        last.evaluation = evaluation(p) ?? last.evaluation;
        // Steps carry a loss; evaluations and feature passes do not.
        if (this.testLossAfterSteps !== null && !p.features && !Number.isNaN(p.loss) && --this.testLossAfterSteps === 0) {
          this.testLossAfterSteps = null;
          this.loseDeviceForTest('next-submit');
        }
        hooks.onProgress?.(p);
      },
      saveCheckpoint: async (bytes: Uint8Array, epoch: number) => {
        last = { bytes, epoch, step: checkpointPosition(bytes).step };
        await hooks.saveCheckpoint?.(bytes, epoch);
      },
      deviceLost: () => this.lostReason,
    };
    let lostFrom: number | null = null; // the epoch of the checkpoint the last loss went back to
    this.training = true;
    try {
      for (;;) {
        const gpu = await this.device();
        const from = last;
        try {
          const result = await attempt(from.bytes, runHooks);
          return { ...result, ...(last === from && from.evaluation), steps: from.step - firstStep + result.steps };
        } catch (e) {
          if (!(await this.lostSince(gpu, true))) throw e;
        }
        const reason = this.lostReason ?? 'unknown reason';
        if (this.gpuOptions === null) throw new Error(`${what}: the GPU device was lost (${reason}) with ${last.epoch} epochs finished: hand the engine a new one with replaceDevice(device), then run it again (from its stored checkpoint, if it keeps one)`);
        if (lostFrom === last.epoch) throw new Error(`${what}: the GPU device was lost (${reason}) again before another epoch finished; the run stops at the checkpoint of epoch ${last.epoch}`);
        lostFrom = last.epoch;
        const message = `device lost: resumed from ${last.bytes ? `the checkpoint of epoch ${last.epoch}` : 'the start (no epoch had finished)'}`;
        const before = lastProgress as P | null;
        hooks.onProgress?.(restart({
          epoch: last.epoch, epochs, step: 0, stepsPerEpoch: before?.stepsPerEpoch ?? 0, loss: Number.NaN,
          imagesPerSecond: before?.imagesPerSecond ?? Number.NaN, secondsLeft: Number.NaN, recovered: { reason, fromEpoch: last.epoch, message },
        }));
      }
    } finally {
      this.training = false;
      this.testLossAfterSteps = null; // a countdown the run outlived must not lose a later call's device
    }
  }

  /**
   * Trains a dense head (head.hidden, head.outputs) on the frozen backbone: the loaded model, or a
   * preset at its seeded initialisation (as a backbone, without a classifier). The result becomes
   * the segmenter `segment` runs; the loaded model stays as it is. A run stopped before its first
   * step keeps the previous segmenter.
   */
  async trainSegmentation(
    from: 'current' | PresetName,
    head: SegHeadConfig,
    prepare: (config: AnyConfig) => Promise<{ train: SegDataset; holdout: SegDataset }>,
    settings: SegmentSettings,
    hooks: SegmentHooks = {},
    resumeFrom?: Uint8Array,
  ): Promise<{ segmenter: SegmenterInfo | null; eval: SegmentationMetrics | null; stopped: boolean; steps: number }> {
    await this.device();
    let name: string;
    let config: AnyConfig;
    let weights: HostWeights;
    if (from === 'current') {
      const host = this.requireHost();
      config = host.config;
      weights = await this.hostWeights();
      name = `${host.name} segmentation`;
    } else {
      const preset = PRESETS[from];
      if (!preset) throw new Error(`segmentation: unknown preset "${from}"; known: ${Object.keys(PRESETS).join(', ')}`);
      config = { ...preset, numClasses: 0 };
      weights = initWeights(config, settings.seed);
      name = `${from} segmentation`;
    }
    const data = await prepare(config);
    const run = await this.acrossLosses('segmentation', settings.epochs, resumeFrom, hooks, (base): SegmentProgress => base, (p) => p.eval && { eval: p.eval }, async (from, runHooks) => {
      const gpu = await this.device();
      const model = await this.upload(gpu, config, weights);
      let segHead: SegHead | undefined;
      try {
        const { width } = tokenLayout(model);
        segHead = SegHead.create(gpu, head, width, initSegHead(head, width, settings.seed));
        return { ...(await trainSegHead(model, segHead, name, data, settings, runHooks, from)), model, segHead };
      } catch (e) {
        model.destroy();
        segHead?.destroy();
        throw e;
      }
    });
    const { model, segHead } = run;
    const result = { eval: run.eval, stopped: run.stopped, steps: run.steps };
    if (run.steps === 0) {
      model.destroy();
      segHead.destroy();
      return { segmenter: this.segmenter?.info ?? null, ...result };
    }
    try {
      const trained = new Map([...(await model.download()), ...(await segHead.download())]);
      this.dropSegmenter();
      const info: SegmenterInfo = { name, family: model.family.name, imageSize: config.imageSize, cropPct: config.cropPct, head, eval: run.eval };
      this.segmenter = { info, config, weights: trained };
      this.segGpu = { model, head: segHead };
      return { segmenter: info, ...result };
    } catch (e) {
      model.destroy();
      segHead.destroy();
      throw e;
    }
  }

  /** Masks for decoded images from the trained segmenter (timm preprocessing to its backbone's input). */
  async segmentImages(images: Pixels[]): Promise<MaskResult[]> {
    const { config } = this.requireSegmenter();
    if (images.length === 0) return [];
    return this.segmentTensor(preprocess(images, config), images.length);
  }

  /**
   * Masks for a ready NCHW batch at the segmenter's input size. A device lost under it runs it
   * once more on a new one (retriedOnLoss), the segmenter uploaded again from its host copies.
   */
  async segmentTensor(input: Float32Array, batch: number): Promise<MaskResult[]> {
    const { config } = this.requireSegmenter();
    const S = config.imageSize;
    if (!Number.isInteger(batch) || batch <= 0) throw new Error(`segment: batch must be a positive integer, got ${batch}`);
    if (input.length !== batch * config.inChannels * S * S) throw new Error(`segment: input has ${input.length} values; ${batch} images of ${config.inChannels}x${S}x${S} need ${batch * config.inChannels * S * S}`);
    checkInput(input, S, config, familyOf(config).planner(config, 1, S).attention);
    return this.retriedOnLoss('segment', async () => this.segmentOnGpu(input, batch));
  }

  /** segmentTensor's GPU work, on the current device. */
  private async segmentOnGpu(input: Float32Array, batch: number): Promise<MaskResult[]> {
    const { config, weights, info } = this.requireSegmenter();
    const S = config.imageSize;
    if (!this.segGpu) {
      // After a device change: from the host copies.
      const model = await this.upload(this.gpu, config, new Map([...weights].filter(([n]) => !n.startsWith('seg_head.'))));
      this.segGpu = { model, head: SegHead.create(this.gpu, info.head, tokenLayout(model).width, new Map([...weights].filter(([n]) => n.startsWith('seg_head.')))) };
    }
    const { model, head } = this.segGpu;
    const B = Math.min(batch, MAX_PLAN_BATCH);
    const cache = await patchTokens(model, { inputs: input, count: batch }, B);
    const [h, w] = cache.grid;
    const plan = await planSegmentation(head, { batch: B, tokens: h * w, grid: [h, w], size: [S, S], prefix: 0 });
    const K = info.head.outputs;
    const P = S * S;
    const row = h * w * cache.width;
    const results: MaskResult[] = [];
    try {
      const tokens = new Float32Array(B * row);
      for (let start = 0; start < batch; start += B) {
        const n = Math.min(B, batch - start);
        tokens.set(cache.tokens.subarray(start * row, (start + n) * row));
        plan.predict(tokens);
        const logits = await readTensor(model.gpu, plan.logits);
        for (let i = 0; i < n; i++) {
          const mask = new Float32Array(P);
          for (let p = 0; p < P; p++) {
            const at = (i * P + p) * K;
            if (K === 1) mask[p] = 1 / (1 + Math.exp(-logits[at]!));
            else {
              let best = 0;
              for (let k = 1; k < K; k++) if (logits[at + k]! > logits[at + best]!) best = k;
              mask[p] = best;
            }
          }
          results.push({ size: S, mask });
        }
      }
    } finally {
      plan.destroy();
    }
    return results;
  }

  /** The trained segmenter, if any. */
  segmenterInfo(): SegmenterInfo | null {
    return this.segmenter?.info ?? null;
  }

  /**
   * The segmenter as safetensors: the backbone under its timm names and the head as `seg_head.fc1`,
   * `seg_head.fc2`, ... (the seed's segmentation_head Linear layers 0, 2, 4); the config carries `segHead`.
   */
  exportSegmenter(): Uint8Array {
    const { config, weights, info } = this.requireSegmenter();
    return exportWeights(weights, { ...config, segHead: info.head } as AnyConfig & { segHead: SegHeadConfig }, familyOf(config).timmModel(config));
  }

  private requireSegmenter(): NonNullable<Engine['segmenter']> {
    if (!this.segmenter) throw new Error('segment: no segmentation head trained yet: call trainSegmentation first');
    return this.segmenter;
  }

  private dropSegmenter(): void {
    this.releaseSegmenter();
    this.segmenter = null;
  }

  /** Frees the segmenter's GPU copies (made again from its host copies when needed). */
  private releaseSegmenter(): void {
    this.segGpu?.model.destroy();
    this.segGpu?.head.destroy();
    this.segGpu = null;
  }

  /** The loaded model's weights as safetensors with timm names (loads in timm and PyTorch). */
  async exportModel(): Promise<Uint8Array> {
    const { config } = this.requireHost();
    return exportWeights(await this.hostWeights(), config, familyOf(config).timmModel(config));
  }

  /** The loaded model's weights on the CPU: those held for a trained model, else read back from the GPU. */
  private async hostWeights(): Promise<HostWeights> {
    const { origin } = this.requireHost();
    return 'weights' in origin ? origin.weights : (await this.loadedModel()).model.download();
  }

  /** The loaded model's class names (`class i` where it has none). */
  labels(): string[] {
    const { config } = this.requireHost();
    return config.labels ?? Array.from({ length: config.numClasses }, (_, i) => `class ${i}`);
  }

  /** Forward plans kept for reuse (at most MAX_PLANS), and the GPU bytes their activations hold. */
  get cachedPlans(): { count: number; bytes: number } {
    let bytes = 0;
    for (const p of this.plans.values()) bytes += p.bytes;
    return { count: this.plans.size, bytes };
  }

  /**
   * The GPU buffers this engine holds now and their bytes: the model, cached plans, a segmenter,
   * while training its plans and optimizer state (gpu/buffers.ts counts each buffer from its
   * creation to its destroy). A device re-created after a loss starts a count of its own.
   */
  memory(): GpuMemory {
    return { ...this.gpu.memory };
  }

  info(): ModelInfo {
    return this.requireHost().info;
  }

  /** Classifies decoded images (any sizes): timm preprocessing, then the forward pass. */
  async classifyImages(images: Pixels[], options: ClassifyOptions & InputSizeOption = {}): Promise<ClassifyResult[]> {
    const host = this.requireHost();
    if (images.length === 0) return [];
    const size = options.imageSize ?? host.config.imageSize;
    return this.classifyTensor(preprocess(images, host.config, size), images.length, size, options);
  }

  /** Classifies a ready NCHW batch [batch, C, H, W]; `imageSize` is H = W, or [H, W]. */
  async classifyTensor(input: Float32Array, batch: number, imageSize: ImageSize, options: ClassifyOptions = {}): Promise<ClassifyResult[]> {
    const c = this.requireHost().config;
    const wantAttention = !!options.attention || !!options.rollout;
    // A backbone (numClasses 0, as DINOv2) has features, tokens and attention but no classes.
    if (c.numClasses === 0 && (options.logits || !(options.features || options.tokens || wantAttention))) {
      throw new Error('classify: this model is a backbone without a classifier (numClasses 0): ask for features, tokens or attention, or fine-tune it with classes');
    }
    return this.inChunks('classify', input, batch, imageSize, (B) => ({ batch: B, imageSize, attention: wantAttention }), (plan, chunk, first) => this.runChunk(plan, chunk, options, first));
  }

  /** Backbone features of decoded images (any sizes): timm preprocessing, then the blocks asked for. */
  async featuresOfImages(images: Pixels[], options: FeatureOptions & InputSizeOption = {}): Promise<FeaturesResult[]> {
    const host = this.requireHost();
    if (images.length === 0) return [];
    const size = options.imageSize ?? host.config.imageSize;
    return this.featuresOfTensor(preprocess(images, host.config, size), images.length, size, options);
  }

  /** Backbone features of a ready NCHW batch [batch, C, H, W]: see FeatureOptions. */
  async featuresOfTensor(input: Float32Array, batch: number, imageSize: ImageSize, options: FeatureOptions = {}): Promise<FeaturesResult[]> {
    const blocks = resolveBlocks(options.blocks ?? [-1], this.info().blockHeads.length);
    const pooled = options.pooled ?? true;
    const norm = options.norm ?? true;
    const taps = [...new Set(blocks)].sort((a, b) => a - b);
    const planOptions = (B: number): ForwardOptions => ({ batch: B, imageSize, taps, tapNorm: norm, head: false, toBlock: pooled ? undefined : taps.at(-1)! + 1 });
    return this.inChunks('features', input, batch, imageSize, planOptions, async (plan, chunk) => {
      const B = plan.batch;
      const read = await this.runPlan(plan, chunk, [...taps.map((i) => plan.taps.get(i)!.out), ...(pooled ? [plan.features] : [])]);
      const outputs = new Map(taps.map((i, k) => [i, read[k]!]));
      const features = pooled ? read.at(-1)! : undefined;
      const F = plan.features.shape[1]!;
      return Array.from({ length: B }, (_, b) => ({
        ...(features && { pooled: features.slice(b * F, (b + 1) * F) }),
        maps: blocks.map((i) => splitTokens(outputs.get(i)!, b, plan.planner.blockTokens(i), i, plan.taps.get(i)!.normed)),
      }));
    });
  }

  /**
   * Checks a batch [batch, C, H, W] (its length, the tokens it makes, its values) before any GPU
   * work, then runs it in chunks of at most MAX_PLAN_BATCH images, fewer where a plan of that many
   * would exceed the GPU's binding limit (graph/fit.ts), each on the plan `options` describes.
   */
  private async inChunks<R>(what: string, input: Float32Array, batch: number, imageSize: ImageSize, options: (batch: number) => ForwardOptions, run: (plan: ForwardPlan, chunk: Float32Array, first: number) => Promise<R[]>): Promise<R[]> {
    const host = this.requireHost();
    const c = host.config;
    const family = familyOf(c);
    const [H, W] = typeof imageSize === 'number' ? [imageSize, imageSize] : imageSize;
    const per = c.inChannels * H * W;
    if (!Number.isInteger(batch) || batch <= 0) throw new Error(`${what}: batch must be a positive integer, got ${batch}`);
    if (input.length !== batch * per) {
      throw new Error(`${what}: input has ${input.length} values; ${batch} images of ${c.inChannels}x${H}x${W} need ${batch * per}`);
    }
    if (H !== W && !family.nonSquare) throw new Error(`${what}: the ${family.name} family takes square images only, not ${H}x${W}`);
    checkInput(input, imageSize, c, family.planner(c, 1, H === W ? H : [H, W]).attention);
    const chunk = await this.fittingBatch(Math.min(batch, MAX_PLAN_BATCH), options, `${host.name} at ${H === W ? H : `${H}x${W}`} px`);
    const results: R[] = [];
    for (let start = 0; start < batch; start += chunk) {
      const n = Math.min(chunk, batch - start);
      // The plan is fetched inside the retry: a device lost mid-run takes its plans with it.
      results.push(...(await this.retriedOnLoss(what, async () => run(await this.plan(options(n)), input.subarray(start * per, (start + n) * per), start))));
    }
    return results;
  }

  /** The largest batch up to `batch` whose plan fits the GPU, found once per model and plan. */
  private async fittingBatch(batch: number, options: (batch: number) => ForwardOptions, what: string): Promise<number> {
    const { model } = await this.loadedModel();
    let known = this.fits.get(model);
    if (!known) this.fits.set(model, (known = new Map()));
    const key = JSON.stringify(options(batch));
    let fit = known.get(key);
    if (fit === undefined) known.set(key, (fit = await largestFittingBatch(this.gpu, model, batch, (m, B) => planForward(m, options(B)), what)));
    return fit;
  }

  private async runChunk(plan: ForwardPlan, input: Float32Array, options: ClassifyOptions, first: number): Promise<ClassifyResult[]> {
    const c = this.requireHost().config;
    const B = plan.batch;
    const wantAttention = !!options.attention || !!options.rollout;
    const headless = c.numClasses === 0;
    const { prefixTokens, grid } = plan.planner.attention;
    // Probabilities are [B * windows, heads, N, N] per block.
    const shapes = wantAttention ? plan.blocks.map((blk, i) => {
      const [BW, heads, N] = blk.probs!.shape as [number, number, number];
      return { ...plan.planner.blockAttention(plan.fromBlock + i), heads, windows: BW / B, tokens: N };
    }) : [];
    if (options.rollout && (prefixTokens === 0 || shapes.some((s) => s.windows !== 1 || s.tokens !== shapes[0]!.tokens))) {
      throw new Error('attention rollout needs global attention with a class token (a ViT or DeiT); ask this model for attention instead');
    }
    // One readback for everything asked for, in this order.
    const normed = plan.neck!.normed;
    const read = await this.runPlan(plan, input, [
      plan.logits, ...(options.features ? [plan.features] : []), ...(options.tokens ? [normed] : []), ...(wantAttention ? plan.blocks.map((b) => b.probs!) : []),
    ]);
    const logits = read.shift()!;
    checkLogits(logits, c.numClasses, first);
    const features = options.features ? read.shift() : undefined;
    const tokens = options.tokens ? read.shift() : undefined;
    const probs = wantAttention ? read : undefined;
    const K = c.numClasses;
    const F = plan.features.shape[1]!;
    const [, T, D] = normed.shape as [number, number, number];
    const { heads = 0, tokens: N = 0 } = shapes[0] ?? {};
    return Array.from({ length: B }, (_, b) => {
      const row = logits.subarray(b * K, (b + 1) * K);
      const result: ClassifyResult = { top: headless ? [] : topK(row, options.topK ?? 5, c.labels) };
      if (options.logits) result.logits = row.slice();
      if (features) result.features = features.slice(b * F, (b + 1) * F);
      if (tokens) result.tokens = tokens.slice((b * T + prefixTokens) * D, (b + 1) * T * D);
      if (probs) {
        const layers = probs.map((p) => {
          const per = p.length / B;
          return p.slice(b * per, (b + 1) * per);
        });
        if (options.attention) {
          result.attention = { layers: layers.length, heads, tokens: N, prefixTokens, grid, shapes, probs: layers };
        }
        if (options.rollout) {
          const map = attentionRollout(layers, heads, N, prefixTokens, options.rollout === true ? {} : options.rollout);
          const max = map.reduce((m, v) => Math.max(m, v), 0);
          result.rollout = map.map((v) => (max > 0 ? v / max : 0));
        }
      }
      return result;
    });
  }

  /** Runs a forward plan on `input` and reads `outputs` back, inside GPU error scopes. */
  private runPlan(plan: ForwardPlan, input: Float32Array, outputs: Tensor[]): Promise<Float32Array[]> {
    const size = typeof plan.imageSize === 'number' ? plan.imageSize : plan.imageSize.join('x');
    return withErrorScopes(this.gpu.device, () => `running the forward pass on ${plan.batch} images of ${size}`, async () => {
      plan.run(input);
      return readTensors(this.gpu, outputs);
    });
  }

  /** A checkpoint's parameters streamed to the GPU, inside GPU error scopes (a model too large fails by name). */
  private async streamIn(gpu: Gpu, checkpoint: OpenedCheckpoint, onProgress?: (p: LoadProgress) => void): Promise<Model> {
    const total = checkpoint.dataBytes;
    let loaded = 0;
    onProgress?.({ stage: 'upload', loaded, total });
    const report = (name: string) => {
      loaded += checkpoint.tensors.get(name)!.fileBytes;
      onProgress?.({ stage: 'upload', loaded, total });
    };
    const family = familyOf(checkpoint.config);
    let bytes = 0;
    for (const [, shape] of family.parameterShapes(checkpoint.config)) bytes += 4 * shape.reduce((a, b) => a * b, 1);
    let model: Model | undefined;
    try {
      return await withErrorScopes(gpu.device, () => `uploading the model's parameters (${formatBytes(bytes)})`, async () => (model = await GpuModel.stream(gpu, family, checkpoint.config, checkpoint.tensors, report)));
    } catch (e) {
      model?.destroy();
      throw e;
    }
  }

  /**
   * The loaded model uploaded again to a new device from where its weights came, inside GPU error
   * scopes. `why` it is needed, for the message when it fails.
   */
  private async uploadAgain(gpu: Gpu, why: string): Promise<Model> {
    const { config, origin } = this.requireHost();
    try {
      return 'checkpoint' in origin ? await this.streamIn(gpu, origin.checkpoint) : await this.upload(gpu, config, origin.weights);
    } catch (e) {
      // Its source may be gone (a file changed since it was chosen): no model rather than a dead one.
      this.dropModel();
      throw new Error(`the model ${why} and could not be uploaded again: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** A model's parameters on the GPU, inside GPU error scopes (a model too large fails by name). */
  private async upload(gpu: Gpu, config: AnyConfig, weights: HostWeights): Promise<Model> {
    let model: Model | undefined;
    try {
      return await withErrorScopes(gpu.device, () => `uploading the model's parameters${model ? ` (${formatBytes(model.bytes)})` : ''}`, async () => (model = createModel(gpu, config, weights)));
    } catch (e) {
      model?.destroy();
      throw e;
    }
  }

  private async plan(options: ForwardOptions): Promise<ForwardPlan> {
    const key = JSON.stringify(options);
    let plan = this.plans.get(key);
    if (!plan) {
      // Room first, so no more than MAX_PLANS exist at once.
      for (const [oldKey, old] of this.plans) {
        if (this.plans.size < MAX_PLANS) break;
        old.destroy();
        this.plans.delete(oldKey);
      }
      plan = await planForward((await this.loadedModel()).model, options);
    }
    this.plans.delete(key); // set again as the most recently used
    this.plans.set(key, plan);
    return plan;
  }

  /**
   * The device, re-created if it was lost. What the old one held is dropped; the loaded model is
   * uploaded again only when a call needs it (loadedModel), so a training, which trains a copy of
   * its own, neither waits for it nor fails when its checkpoint can no longer be read.
   */
  private async device(): Promise<Gpu> {
    if (this.lostReason !== null) {
      if (this.gpuOptions === null) {
        throw new Error(`the GPU device was lost (${this.lostReason}): hand the engine a new one with replaceDevice(device)`);
      }
      this.releaseDevice();
      this.gpu = await createGpu(this.gpuOptions);
      this.watch(this.gpu);
      this.lostReason = null;
    }
    return this.gpu;
  }

  /** The loaded model's name, config, origin and info, whether or not its GPU copy exists now. */
  private requireHost(): NonNullable<Engine['host']> {
    if (!this.host) throw new Error('no model loaded: call loadModel first');
    return this.host;
  }

  /** The loaded model on the current device, uploaded again from where its weights came after a device loss. */
  private async loadedModel(): Promise<{ model: Model; host: NonNullable<Engine['host']> }> {
    const gpu = await this.device();
    const host = this.requireHost();
    this.model ??= await this.uploadAgain(gpu, 'was lost with the GPU device');
    return { model: this.model, host };
  }

  private dropModel(): void {
    this.releaseModel();
    this.host = null;
  }

  /** Frees the loaded model's GPU copy and the plans made for it. */
  private releaseModel(): void {
    for (const p of this.plans.values()) p.destroy();
    this.plans.clear();
    this.model?.destroy();
    this.model = null;
  }

  /** Frees the engine's buffers, and its device unless the app owns it. */
  destroy(): void {
    this.dropModel();
    this.dropSegmenter();
    if (this.gpuOptions !== null) this.endDevice(this.gpu);
  }
}

/** Where a training checkpoint leaves its run (from its header alone); none: the start. */
function checkpointPosition(bytes: Uint8Array | undefined): { epoch: number; step: number } {
  if (!bytes) return { epoch: 0, step: 0 };
  const { metadata } = parseSafetensors(bytes);
  return { epoch: Number(metadata.epoch), step: Number(metadata.step) };
}

/** The k most probable classes, softmax over the logits in float64. */
export function topK(logits: Float32Array, k: number, labels?: string[]): Prediction[] {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  return Array.from(logits, (v, index) => ({ index, v }))
    .sort((a, b) => b.v - a.v)
    .slice(0, Math.max(1, Math.min(k, logits.length)))
    .map(({ index, v }) => ({ index, label: labels?.[index] ?? `class ${index}`, prob: Math.exp(v - max) / sum }));
}
