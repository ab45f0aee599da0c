// A training run over an in-memory dataset: epochs of shuffled batches, progress after every
// step, evaluation on a held-out split and a checkpoint after every epoch, stop on request.
// DOM-free: the worker decodes and preprocesses images into NCHW tensors first.
import { readTensor } from '../gpu/tensor';
import { planForward, type ForwardPlan } from '../graph/forward';
import type { Trainable } from '../graph/backward';
import type { ViT } from '../models/vit';
import { augmentBatch, isOff, mixes, resolveAugment, seededRandom, type AugmentOverrides, type AugmentPreset } from '../training/augment';
import { argmax, Trainer, type TrainerOptions } from '../training/trainer';
import { LinearProbe } from './probe';

export interface Dataset {
  /** NCHW, preprocessed for the model. */
  inputs: Float32Array;
  labels: Int32Array;
  count: number;
}

export interface TrainSettings {
  epochs: number;
  batch: number;
  trainable: Trainable;
  lr: number;
  warmupEpochs: number;
  weightDecay: number;
  smoothing: number;
  seed: number;
  /**
   * Augmentation of training batches (evaluation never): a preset or settings over the seed
   * recipe. Default 'seed', but 'none' for head-only training, whose features are fixed.
   */
  augment?: AugmentPreset | AugmentOverrides;
  /**
   * Head-only training without augmentation runs the backbone once over both splits and trains the
   * head on the cached features (default); false runs the whole forward pass every step instead.
   */
  featureCache?: boolean;
}

export interface TrainProgress {
  epoch: number;
  epochs: number;
  step: number;
  stepsPerEpoch: number;
  loss: number;
  accuracy: number;
  imagesPerSecond: number;
  secondsLeft: number;
  /** Set after each epoch's evaluation on the held-out split. */
  evalAccuracy?: number;
  /** Set when a checkpoint could not be saved (training goes on). */
  warning?: string;
  /**
   * Set while a head-only run computes the features of its images, before its first step (the
   * other fields then describe the start: epoch 0, step 0, loss and accuracy NaN).
   */
  features?: { done: number; total: number };
}

export interface TrainHooks {
  onProgress?: (p: TrainProgress) => void;
  /** Called after each epoch with the checkpoint bytes; may reject (quota): reported, not fatal. */
  saveCheckpoint?: (bytes: Uint8Array, epoch: number) => Promise<void>;
  shouldStop?: () => boolean;
}

/** Mulberry32 shuffle, seeded per epoch so a resumed run sees the same order. */
function shuffled(n: number, seed: number): Int32Array {
  const order = Int32Array.from({ length: n }, (_, i) => i);
  let s = seed >>> 0;
  for (let i = n - 1; i > 0; i--) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const j = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * (i + 1) | 0;
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/** Accuracy of `plan`'s model on `data`, in batches of the plan's size. */
export async function evaluate(plan: ForwardPlan, model: ViT, data: Dataset): Promise<number> {
  if (data.count === 0) return Number.NaN;
  const per = data.inputs.length / data.count;
  const { batch } = plan;
  const K = model.config.numClasses;
  let correct = 0;
  const input = new Float32Array(batch * per);
  for (let start = 0; start < data.count; start += batch) {
    const n = Math.min(batch, data.count - start);
    input.fill(0);
    input.set(data.inputs.subarray(start * per, (start + n) * per));
    plan.run(input);
    const logits = await readTensor(model.gpu, plan.logits);
    for (let b = 0; b < n; b++) if (argmax(logits.subarray(b * K, (b + 1) * K)) === data.labels[start + b]) correct++;
  }
  return correct / data.count;
}

/** Refuses settings no run can use, naming the setting; call before any costly preparation. */
export function checkTrainSettings(s: TrainSettings): void {
  const positiveInt = (v: number) => Number.isInteger(v) && v > 0;
  if (!positiveInt(s.epochs)) throw new Error(`training: epochs must be a positive integer, got ${s.epochs}`);
  if (!positiveInt(s.batch)) throw new Error(`training: batch must be a positive integer, got ${s.batch}`);
  if (!(Number.isFinite(s.lr) && s.lr > 0)) throw new Error(`training: the learning rate must be a positive number, got ${s.lr}`);
  if (!(s.warmupEpochs >= 0)) throw new Error(`training: warmupEpochs must be 0 or more, got ${s.warmupEpochs}`);
}

export async function train(model: ViT, name: string, data: { train: Dataset; holdout: Dataset }, s: TrainSettings, hooks: TrainHooks = {}, resumeFrom?: Uint8Array): Promise<{ epochs: number; evalAccuracy: number; stopped: boolean }> {
  checkTrainSettings(s);
  const { train: ds } = data;
  if (ds.count === 0) throw new Error('training: the dataset is empty');
  const classes = new Set(ds.labels);
  if (classes.size < 2) throw new Error(`training: needs at least two classes with images, found ${classes.size}`);
  const K = model.config.numClasses;
  const bad = ds.labels.findIndex((l) => l < 0 || l >= K);
  if (bad >= 0) throw new Error(`training: label ${ds.labels[bad]} of example ${bad} is outside [0, ${K})`);
  const batch = Math.min(s.batch, ds.count);
  const stepsPerEpoch = Math.floor(ds.count / batch);
  const augment = resolveAugment(s.augment ?? (s.trainable === 'head' ? 'none' : 'seed'));
  const { inChannels: C, imageSize: S, mean, std } = model.config;
  const options: TrainerOptions = {
    batch, trainable: s.trainable, smoothing: s.smoothing, softTargets: mixes(augment),
    schedule: { baseLr: s.lr, warmupSteps: Math.round(s.warmupEpochs * stepsPerEpoch), totalSteps: s.epochs * stepsPerEpoch },
    adamw: { weightDecay: s.weightDecay },
  };
  const probe = s.trainable === 'head' && isOff(augment) && s.featureCache !== false ? await LinearProbe.create(model, name, data, options) : null;
  const full = probe ? null : await Trainer.create(model, name, options);
  const trainer = probe?.trainer ?? full!;
  const per = ds.inputs.length / ds.count;
  const input = new Float32Array(probe ? 0 : batch * per); // the probe steps on cached features
  const targets = new Float32Array(batch);
  let firstEpoch = 0;
  if (resumeFrom) firstEpoch = trainer.restore(resumeFrom);
  if (probe) {
    const f0 = performance.now();
    await probe.computeFeatures((done, total) => {
      const rate = done / ((performance.now() - f0) / 1000);
      hooks.onProgress?.({ epoch: firstEpoch, epochs: s.epochs, step: 0, stepsPerEpoch, loss: Number.NaN, accuracy: Number.NaN, imagesPerSecond: rate, secondsLeft: (total - done) / rate, features: { done, total } });
    });
  }
  // Planned at the first evaluation and kept for the others.
  let evalPlan: ForwardPlan | null = null;
  let evalAccuracy = Number.NaN;
  let stopped = false;
  const t0 = performance.now();
  let seen = 0;
  try {
    for (let epoch = firstEpoch; epoch < s.epochs && !stopped; epoch++) {
      const order = shuffled(ds.count, s.seed + epoch);
      for (let step = 0; step < stepsPerEpoch; step++) {
        if (hooks.shouldStop?.()) {
          stopped = true;
          break;
        }
        const rows = order.subarray(step * batch, (step + 1) * batch);
        rows.forEach((i, b) => (targets[b] = ds.labels[i]!));
        let r;
        if (probe) {
          r = await probe.trainer.trainStep(rows, targets); // the images' features are on the GPU already
        } else {
          rows.forEach((i, b) => input.set(ds.inputs.subarray(i * per, (i + 1) * per), b * per));
          // Mixing folds the smoothing into soft targets [B, K]; the randomness is fixed by seed and step.
          const aug = isOff(augment) ? { images: input, targets }
            : augmentBatch(input, targets, { n: batch, c: C, h: S, w: S }, { mean, std, numClasses: K, smoothing: s.smoothing }, augment, seededRandom(s.seed, epoch * stepsPerEpoch + step));
          r = await full!.trainStep(aug.images, aug.targets);
        }
        if (r.skipped) throw new Error(`training stopped: the loss became ${r.loss} at step ${r.step} (learning rate ${r.lr.toExponential(2)} too high?); the last good weights are kept`);
        seen += batch;
        const elapsed = (performance.now() - t0) / 1000;
        const rate = seen / elapsed;
        const remaining = ((s.epochs - epoch - 1) * stepsPerEpoch + (stepsPerEpoch - step - 1)) * batch;
        hooks.onProgress?.({ epoch, epochs: s.epochs, step: step + 1, stepsPerEpoch, loss: r.loss, accuracy: r.accuracy, imagesPerSecond: rate, secondsLeft: remaining / rate });
      }
      if (stopped) break;
      if (probe) evalAccuracy = await probe.evaluate();
      else evalAccuracy = await evaluate((evalPlan ??= await planForward(model, { batch })), model, data.holdout);
      let warning: string | undefined;
      if (hooks.saveCheckpoint) {
        await hooks.saveCheckpoint(await trainer.checkpoint(epoch + 1), epoch + 1).catch((e: unknown) => {
          warning = e instanceof Error ? e.message : String(e);
        });
      }
      hooks.onProgress?.({ epoch, epochs: s.epochs, step: stepsPerEpoch, stepsPerEpoch, loss: Number.NaN, accuracy: Number.NaN, imagesPerSecond: seen / ((performance.now() - t0) / 1000), secondsLeft: 0, evalAccuracy, ...(warning && { warning }) });
    }
  } finally {
    (probe ?? trainer).destroy();
    evalPlan?.destroy();
  }
  return { epochs: s.epochs, evalAccuracy, stopped };
}
