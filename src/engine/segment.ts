// Training the dense head. On a frozen backbone the backbone runs once over the training and
// held-out images and keeps each image's patch tokens after the final norm (the same forward pass
// that classifies; class and register tokens dropped), then every step runs the head alone on a
// batch of them; training the last k blocks or everything too, every step runs from the images
// (graph/segmentTraining.ts). Either way: per-pixel loss, AdamW, warmup and cosine decay, the held-out IoU and Dice after
// every epoch, and a checkpoint (backbone and head weights, the head's AdamW moments) to resume
// from. DOM-free.
import type { Gpu } from '../gpu/device';
import { readTensor } from '../gpu/tensor';
import { planForward } from '../graph/forward';
import type { Model } from '../graph/model';
import { planSegmentation, type SegHead, type SegPlan } from '../graph/segment';
import { planSegmentationTraining } from '../graph/segmentTraining';
import { checkCompatible, parseCheckpoint, serializeCheckpoint } from '../training/checkpoint';
import { ADAMW_DEFAULTS, AdamW } from '../training/optimizer';
import { shuffled } from '../training/random';
import { learningRate } from '../training/schedule';
import type { IdxArray } from '../data/idx';
import { preprocess, type PreprocessConfig } from '../image/preprocess';
import { checkMask, cropMask, GARMENT_THRESHOLD, maskFromPixels, SegmentationScore, type SegmentationMetrics } from '../training/segmentation';
import { checkDevice, checkLoopSettings, FROZEN_OUTPUT_BYTES, isPositiveInt, type Recovered } from './train';

/** Images preprocessed for the backbone and a mask of the model's input size for each. */
export interface SegDataset {
  /** [N, C, S, S] */
  inputs: Float32Array;
  /** [N, S * S]: 0/1 (binary) or class indices. */
  masks: Float32Array;
  count: number;
  /** Names of the examples, for errors (file names); default `example i`. */
  names?: string[];
}

export interface SegmentSettings {
  epochs: number;
  batch: number;
  lr: number;
  warmupEpochs: number;
  weightDecay: number;
  seed: number;
  /**
   * What trains: the head alone on the frozen backbone's tokens, computed once ('head', the
   * default), or with it the last k blocks and the final norm, or everything, from the images
   * every step.
   */
  trainable?: 'head' | 'all' | { lastBlocks: number };
}

export interface SegmentProgress {
  epoch: number;
  epochs: number;
  step: number;
  stepsPerEpoch: number;
  /** Mean per-pixel loss of this batch. */
  loss: number;
  imagesPerSecond: number;
  secondsLeft: number;
  /** Set after each epoch: the held-out pairs' scores. */
  eval?: SegmentationMetrics;
  /** Set while the backbone computes the images' tokens, once, before the first step. */
  features?: { done: number; total: number };
  warning?: string;
  /** Set once after the GPU device was lost under the run: see TrainProgress.recovered. */
  recovered?: Recovered;
}

export interface SegmentHooks {
  onProgress?: (p: SegmentProgress) => void;
  saveCheckpoint?: (bytes: Uint8Array, epoch: number) => Promise<void>;
  shouldStop?: () => boolean;
  /** As TrainHooks.deviceLost. */
  deviceLost?: () => string | null;
}

/** Patch tokens of N images: [N, h * w, D], row-major over the grid. */
export interface TokenCache { tokens: Float32Array; count: number; grid: [number, number]; width: number }

/**
 * The built-in example: Fashion-MNIST images [offset, offset + count) of an (N, 28, 28) IDX array,
 * each with the mask of its own garment (grey value above `threshold`, GARMENT_THRESHOLD by
 * default), both taken to the backbone's input (for a 28 px, 1-channel backbone, as they are).
 */
export function fashionMnistSegmentation(images: IdxArray, offset: number, count: number, config: PreprocessConfig, threshold = GARMENT_THRESHOLD): SegDataset {
  const [N, H, W] = images.shape as [number, number, number];
  if (!Number.isInteger(offset) || !Number.isInteger(count) || offset < 0 || count < 0 || offset + count > N) {
    throw new Error(`Fashion-MNIST masks: images ${offset}..${offset + count - 1} asked for, the file has ${N}`);
  }
  const S = config.imageSize;
  const pixels = [];
  const masks = new Float32Array(count * S * S);
  for (let i = 0; i < count; i++) {
    const grey = images.data.subarray((offset + i) * H * W, (offset + i + 1) * H * W);
    const rgba = new Uint8ClampedArray(4 * H * W);
    for (let p = 0; p < H * W; p++) rgba.set([grey[p]!, grey[p]!, grey[p]!, 255], 4 * p);
    pixels.push({ width: W, height: H, data: rgba, channels: 4 as const });
    masks.set(cropMask(maskFromPixels(grey, threshold), W, H, S, config.cropPct), i * S * S);
  }
  return { inputs: preprocess(pixels, config), masks, count, names: Array.from({ length: count }, (_, i) => `Fashion-MNIST image ${offset + i}`) };
}

/** Refuses a dataset whose masks do not fit the model's input or the head's outputs, naming the example. */
export function checkSegDataset(data: SegDataset, imageSize: number, outputs: number, what: string): void {
  const P = imageSize * imageSize;
  if (data.masks.length !== data.count * P) throw new Error(`${what}: ${data.masks.length} mask values for ${data.count} masks of ${imageSize}x${imageSize}`);
  for (let i = 0; i < data.count; i++) checkMask(data.masks.subarray(i * P, (i + 1) * P), outputs, P, data.names?.[i] ?? `${what} example ${i}`);
}

/** The backbone's patch tokens after the final norm for every image of `data`, computed once. */
export async function patchTokens(model: Model, data: Pick<SegDataset, 'inputs' | 'count'>, batch: number, onImages?: (done: number) => void): Promise<TokenCache> {
  const { grid: [h, w], prefix, width: D } = tokenLayout(model);
  const bytes = data.count * h * w * D * 4;
  if (bytes > FROZEN_OUTPUT_BYTES) throw new Error(`segmentation: ${data.count} images' tokens take ${(bytes / 2 ** 20).toFixed(0)} MiB, over the ${FROZEN_OUTPUT_BYTES / 2 ** 20} MiB kept in memory; use fewer images`);
  const tokens = new Float32Array(data.count * h * w * D);
  if (data.count === 0) return { tokens, count: 0, grid: [h, w], width: D };
  const B = Math.max(1, Math.min(batch, data.count));
  const plan = await planForward(model, { batch: B });
  try {
    const per = data.inputs.length / data.count;
    const input = new Float32Array(B * per);
    const T = prefix + h * w;
    for (let start = 0; start < data.count; start += B) {
      const n = Math.min(B, data.count - start);
      input.set(data.inputs.subarray(start * per, (start + n) * per));
      if (n < B) input.fill(0, n * per);
      plan.run(input);
      const normed = await readTensor(model.gpu, plan.neck!.normed);
      for (let i = 0; i < n; i++) tokens.set(normed.subarray((i * T + prefix) * D, (i + 1) * T * D), (start + i) * h * w * D);
      onImages?.(start + n);
    }
  } finally {
    plan.destroy();
  }
  return { tokens, count: data.count, grid: [h, w], width: D };
}

/**
 * What the final norm outputs per image: `prefix` tokens (class, registers), then the last block's
 * map (h, w) row-major, `width` wide (a Swin's last stage: its own grid and width).
 */
export function tokenLayout(model: Model): { grid: [number, number]; prefix: number; width: number } {
  const { config: c, family } = model;
  const planner = family.planner(c, 1, c.imageSize);
  const { classTokens, registers, grid, dim } = planner.blockTokens(planner.depth - 1);
  return { grid, prefix: classTokens + registers, width: dim };
}

/** Thrown out of the token pass when a stop is requested. */
class StopRequested extends Error {}

export function checkSegmentSettings(s: SegmentSettings): void {
  checkLoopSettings('segmentation', s);
  const t = s.trainable ?? 'head';
  if (t !== 'head' && t !== 'all' && !(typeof t === 'object' && isPositiveInt(t.lastBlocks))) {
    throw new Error(`segmentation: trainable must be 'head', 'all' or { lastBlocks: k } with k a positive integer, got ${JSON.stringify(t)}`);
  }
}

/** The config a checkpoint of this run carries: the backbone's and the head's. */
function runConfig(model: Model, head: SegHead) {
  return { ...model.config, segHead: head.config };
}

/**
 * Trains `head` on `model`'s patch tokens, the backbone frozen or partly trained with it
 * (`s.trainable`). `steps` counts the optimizer steps this call took (0: stopped before the first;
 * head and backbone are then as they started or as the checkpoint left them).
 */
export async function trainSegHead(
  model: Model, head: SegHead, name: string, data: { train: SegDataset; holdout: SegDataset }, s: SegmentSettings,
  hooks: SegmentHooks = {}, resumeFrom?: Uint8Array,
): Promise<{ eval: SegmentationMetrics | null; stopped: boolean; steps: number }> {
  checkSegmentSettings(s);
  const { imageSize: S } = model.config;
  const K = head.config.outputs;
  checkSegDataset(data.train, S, K, 'training pairs');
  checkSegDataset(data.holdout, S, K, 'held-out pairs');
  if (data.train.count === 0) throw new Error('segmentation: no training pairs');
  const batch = Math.min(s.batch, data.train.count);
  const stepsPerEpoch = Math.floor(data.train.count / batch);
  let firstEpoch = 0;
  let step = 0;
  const schedule = { baseLr: s.lr, warmupSteps: Math.round(s.warmupEpochs * stepsPerEpoch), totalSteps: s.epochs * stepsPerEpoch };
  if (resumeFrom) {
    const ckpt = parseCheckpoint(resumeFrom);
    checkCompatible({ name, config: runConfig(model, head) }, ckpt);
    model.upload(new Map([...ckpt.weights].filter(([n]) => model.params.has(n))));
    head.upload(new Map([...ckpt.weights].filter(([n]) => head.params.has(n))));
    firstEpoch = ckpt.epoch;
    step = ckpt.step;
  }
  const frozen = (s.trainable ?? 'head') === 'head';
  // What a step reads per example: the patch tokens (frozen backbone), computed once for both
  // splits after a restore, so from the checkpoint's backbone; or the images.
  let rows = { train: data.train.inputs, holdout: data.holdout.inputs };
  if (frozen) {
    const total = data.train.count + data.holdout.count;
    const t0 = performance.now();
    const onImages = (done: number) => {
      if (hooks.shouldStop?.()) throw new StopRequested('stopped while computing tokens');
      const rate = done / ((performance.now() - t0) / 1000);
      hooks.onProgress?.({ epoch: firstEpoch, epochs: s.epochs, step: 0, stepsPerEpoch, loss: Number.NaN, imagesPerSecond: rate, secondsLeft: (total - done) / rate, features: { done, total } });
    };
    try {
      const train = await patchTokens(model, data.train, batch, onImages);
      const holdout = await patchTokens(model, data.holdout, batch, (n) => onImages(data.train.count + n));
      rows = { train: train.tokens, holdout: holdout.tokens };
    } catch (e) {
      if (e instanceof StopRequested) return { eval: null, stopped: true, steps: 0 };
      throw e;
    }
    checkDevice(hooks, 'segmentation');
  }
  const { grid: [h, w] } = tokenLayout(model);
  const plan = frozen
    ? await planSegmentation(head, { batch, tokens: h * w, grid: [h, w], size: [S, S], prefix: 0 })
    : await planSegmentationTraining(model, head, { batch, trainable: s.trainable as 'all' | { lastBlocks: number } });
  let optimizer: AdamW | undefined;
  try {
    const [params, isNoDecay] = 'params' in plan ? [plan.params, plan.isNoDecay] : [head, (n: string) => head.isNoDecay(n)];
    optimizer = await AdamW.create(model.gpu, params, isNoDecay, plan.grads, plan.gradsFlat, { ...ADAMW_DEFAULTS, weightDecay: s.weightDecay });
    if (resumeFrom) optimizer.restore(parseCheckpoint(resumeFrom).optimizer, step);
    const firstStep = optimizer.step;
    const P = S * S;
    const row = rows.train.length / data.train.count;
    const input = new Float32Array(batch * row);
    const targets = new Float32Array(batch * P);
    let evalScore: SegmentationMetrics | null = null;
    let stopped = false;
    let seen = 0;
    const t1 = performance.now();
    for (let epoch = firstEpoch; epoch < s.epochs && !stopped; epoch++) {
      const order = shuffled(data.train.count, s.seed + epoch);
      for (let k = 0; k < stepsPerEpoch; k++) {
        if (hooks.shouldStop?.()) {
          stopped = true;
          break;
        }
        order.subarray(k * batch, (k + 1) * batch).forEach((i, b) => {
          input.set(rows.train.subarray(i * row, (i + 1) * row), b * row);
          targets.set(data.train.masks.subarray(i * P, (i + 1) * P), b * P);
        });
        plan.run(input, targets);
        optimizer.apply(learningRate(schedule, optimizer.step + 1));
        const losses = await readTensor(model.gpu, plan.loss);
        const loss = losses.reduce((a, b) => a + b, 0) / losses.length;
        checkDevice(hooks, 'segmentation');
        if (!Number.isFinite(loss)) throw new Error(`segmentation stopped: the loss became ${loss} at step ${optimizer.step}; the last good weights are kept`);
        seen += batch;
        const rate = seen / ((performance.now() - t1) / 1000);
        hooks.onProgress?.({ epoch, epochs: s.epochs, step: k + 1, stepsPerEpoch, loss, imagesPerSecond: rate, secondsLeft: ((s.epochs - epoch - 1) * stepsPerEpoch + stepsPerEpoch - k - 1) * batch / rate });
      }
      if (stopped) break;
      evalScore = await evaluateSegHead(model.gpu, plan, rows.holdout, data.holdout.count, data.holdout.masks, P, K);
      checkDevice(hooks, 'segmentation');
      let warning: string | undefined;
      if (hooks.saveCheckpoint) {
        const bytes = serializeCheckpoint({
          name, config: runConfig(model, head), step: optimizer.step, epoch: epoch + 1,
          weights: new Map([...(await model.download()), ...(await head.download())]), optimizer: await optimizer.state(),
        });
        checkDevice(hooks, 'segmentation');
        await hooks.saveCheckpoint(bytes, epoch + 1).catch((e: unknown) => {
          warning = e instanceof Error ? e.message : String(e);
        });
      }
      hooks.onProgress?.({ epoch, epochs: s.epochs, step: stepsPerEpoch, stepsPerEpoch, loss: Number.NaN, imagesPerSecond: seen / ((performance.now() - t1) / 1000), secondsLeft: 0, ...(evalScore && { eval: evalScore }), ...(warning && { warning }) });
    }
    return { eval: evalScore, stopped, steps: optimizer.step - firstStep };
  } finally {
    optimizer?.destroy();
    plan.destroy();
  }
}

/** IoU, Dice and pixel accuracy of the head on `count` inputs (cached tokens, or images) against `masks`. */
export async function evaluateSegHead(gpu: Gpu, plan: Pick<SegPlan, 'predict' | 'logits'>, inputs: Float32Array, count: number, masks: Float32Array, pixels: number, outputs: number): Promise<SegmentationMetrics | null> {
  if (count === 0) return null;
  const B = plan.logits.shape[0]! / pixels;
  const row = inputs.length / count;
  const input = new Float32Array(B * row);
  const score = new SegmentationScore(outputs);
  for (let start = 0; start < count; start += B) {
    const n = Math.min(B, count - start);
    input.set(inputs.subarray(start * row, (start + n) * row));
    if (n < B) input.fill(0, n * row);
    plan.predict(input);
    score.add(await readTensor(gpu, plan.logits), masks.subarray(start * pixels, (start + n) * pixels), n * pixels);
  }
  return score.result();
}
