// A training run over an in-memory dataset: epochs of shuffled batches, progress after every
// step, evaluation on a held-out split and a checkpoint after every epoch, stop on request.
// DOM-free: the worker decodes and preprocesses images into NCHW tensors first.
import { planForward, type ForwardPlan } from '../graph/forward';
import type { Model } from '../graph/model';
import { fittingMicroBatch } from '../graph/fit';
import { firstTrainableBlock, fittingGradientShapes, planTraining, trainableNames, type Trainable } from '../graph/training';
import { bindingLimitName, numel } from '../gpu/tensor';
import { augmentBatch, isOff, mixes, resolveAugment, type AugmentOverrides, type AugmentPreset } from '../training/augment';
import { seededRandom, shuffled } from '../training/random';
import { Trainer, type TrainerOptions } from '../training/trainer';
import { evaluate, frozenOutputs, type Dataset } from './dataset';
import { LinearProbe } from './probe';

export interface TrainSettings {
  epochs: number;
  /**
   * Examples per micro-batch: what one GPU step holds. One whose activations exceed the GPU's
   * binding limit runs as smaller micro-batches that add up to it (graph/fit.ts), said in the
   * epochs' progress warning; with augmentation, each draws its own mixing partners and randomness.
   */
  batch: number;
  /**
   * Micro-batches per optimizer step (gradient accumulation, default 1): the step's gradient is
   * that of one batch of accumulate * batch. Micro-batches left over at an epoch's end, too few
   * for a whole step, are skipped that epoch (the order is shuffled per epoch).
   */
  accumulate?: number;
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
   * Training without augmentation runs the frozen part of the model once over both splits, then
   * every step and evaluation starts where training starts: the head on cached features (head
   * only), or the first trainable block on the frozen blocks' cached output (last k blocks, when
   * that fits in FROZEN_OUTPUT_BYTES). Default true; false runs the whole forward pass every step.
   */
  featureCache?: boolean;
}

/** What a request leaves out: a short head-only fine-tune with the DeiT recipe's smoothing and decay. */
export const DEFAULT_TRAIN_SETTINGS: TrainSettings = { epochs: 5, batch: 16, trainable: 'head', lr: 1e-3, warmupEpochs: 0, weightDecay: 0.05, smoothing: 0.1, seed: 0 };

export interface TrainProgress {
  epoch: number;
  epochs: number;
  /** Micro-batches done this epoch, of stepsPerEpoch (with accumulation, several make one optimizer step). */
  step: number;
  stepsPerEpoch: number;
  loss: number;
  accuracy: number;
  imagesPerSecond: number;
  secondsLeft: number;
  /** Set after each epoch's evaluation on the held-out split. */
  evalAccuracy?: number;
  /**
   * Set after an epoch when the batch ran as micro-batches to fit the GPU's limits, or a checkpoint
   * could not be saved (training goes on).
   */
  warning?: string;
  /**
   * Set while a run computes what its frozen layers output for its images, once, before its first
   * step (the other fields then describe the start: step 0, loss and accuracy NaN).
   */
  features?: { done: number; total: number };
  /**
   * Set once after the GPU device was lost under the run: the engine re-created it and the model,
   * and the run goes on from the checkpoint of epoch `fromEpoch` (0: from the start, when no epoch
   * had finished). `message` says so: "device lost: resumed from the checkpoint of epoch 1". The
   * other fields then describe the restart: `epoch` is fromEpoch, step 0, loss and accuracy NaN.
   */
  recovered?: Recovered;
}

/** How a run went on after its device was lost (see TrainProgress.recovered). */
export interface Recovered { reason: string; fromEpoch: number; message: string }

export interface TrainHooks {
  onProgress?: (p: TrainProgress) => void;
  /** Called after each epoch with the checkpoint bytes; may reject (quota): reported, not fatal. */
  saveCheckpoint?: (bytes: Uint8Array, epoch: number) => Promise<void>;
  shouldStop?: () => boolean;
  /**
   * Why the GPU device was lost, or null while it lives: asked after every step, evaluation and
   * checkpoint, before their results count, since a readback from a lost device may not fail.
   */
  deviceLost?: () => string | null;
}

/** Throws when the device was lost: what was read back from it since cannot be trusted. */
export function checkDevice(hooks: { deviceLost?: () => string | null }, what = 'training'): void {
  const reason = hooks.deviceLost?.();
  if (reason != null) throw new Error(`${what}: the GPU device was lost (${reason})`);
}

/**
 * Host bytes a run may spend on the frozen blocks' output for all its examples ([N, T, D] floats),
 * beside the images themselves in a tab's memory; past this, the frozen blocks run in every step
 * instead. DeiT-tiny: 151 kB an image, so about 3,500 images.
 */
export const FROZEN_OUTPUT_BYTES = 512 << 20;

/** Thrown out of the pass that computes the frozen layers' output when a stop is requested. */
class StopRequested extends Error {}

/** Refuses settings no run can use, naming the setting; call before any costly preparation. */
export function checkTrainSettings(s: TrainSettings): void {
  checkLoopSettings('training', s);
  if (s.accumulate !== undefined && !isPositiveInt(s.accumulate)) throw new Error(`training: accumulate must be a positive integer, got ${s.accumulate}`);
}

export const isPositiveInt = (v: number): boolean => Number.isInteger(v) && v > 0;

/** What every training loop (the classifier's, the dense head's) needs of its settings; `what` starts the message. */
export function checkLoopSettings(what: string, s: { epochs: number; batch: number; lr: number; warmupEpochs: number }): void {
  if (!isPositiveInt(s.epochs)) throw new Error(`${what}: epochs must be a positive integer, got ${s.epochs}`);
  if (!isPositiveInt(s.batch)) throw new Error(`${what}: batch must be a positive integer, got ${s.batch}`);
  if (!(Number.isFinite(s.lr) && s.lr > 0)) throw new Error(`${what}: the learning rate must be a positive number, got ${s.lr}`);
  if (!(s.warmupEpochs >= 0)) throw new Error(`${what}: warmupEpochs must be 0 or more, got ${s.warmupEpochs}`);
}

/**
 * Trains `model` in place. `steps` counts the optimizer steps this call took: 0 when it was stopped
 * before its first (the weights are then the starting ones, or the checkpoint's).
 */
export async function train(model: Model, name: string, data: { train: Dataset; holdout: Dataset }, s: TrainSettings, hooks: TrainHooks = {}, resumeFrom?: Uint8Array): Promise<{ epochs: number; evalAccuracy: number; stopped: boolean; steps: number }> {
  checkTrainSettings(s);
  const { train: ds } = data;
  if (ds.count === 0) throw new Error('training: the dataset is empty');
  const classes = new Set(ds.labels);
  if (classes.size < 2) throw new Error(`training: needs at least two classes with images, found ${classes.size}`);
  const K = model.config.numClasses;
  const bad = ds.labels.findIndex((l) => l < 0 || l >= K);
  if (bad >= 0) throw new Error(`training: label ${ds.labels[bad]} of example ${bad} is outside [0, ${K})`);
  const wanted = Math.min(s.batch, ds.count);
  const augment = resolveAugment(s.augment ?? (s.trainable === 'head' ? 'none' : 'seed'));
  const { inChannels: C, imageSize: S, mean, std } = model.config;
  // A batch whose activations exceed a binding runs as micro-batches that fit (exact: see accumulate).
  fittingGradientShapes(model, trainableNames(model.family, model.config, s.trainable));
  const batch = await fittingMicroBatch(model.gpu, model, wanted, (m, B) => planTraining(m, { batch: B, trainable: s.trainable, softTargets: mixes(augment) }), `training ${name} at ${S} px`);
  const accumulate = (s.accumulate ?? 1) * (wanted / batch);
  const split = batch < wanted ? `batch ${wanted} runs as ${wanted / batch} micro-batches of ${batch}, to fit ${bindingLimitName(model.gpu)}` : undefined;
  // Micro-batches per epoch: whole optimizer steps only.
  const stepsPerEpoch = Math.floor(ds.count / batch / accumulate) * accumulate;
  // In the user's terms, not the micro-batches': with `batch` dividing `wanted`, this is the same test.
  if (stepsPerEpoch === 0) {
    const batches = Math.floor(ds.count / wanted);
    throw new Error(`training: ${ds.count} examples make ${batches} batch${batches === 1 ? '' : 'es'} of ${wanted}, fewer than the ${s.accumulate ?? 1} one step accumulates`);
  }
  const optimizerSteps = stepsPerEpoch / accumulate;
  const options: TrainerOptions = {
    batch, trainable: s.trainable, smoothing: s.smoothing, softTargets: mixes(augment),
    accumulation: accumulate,
    schedule: { baseLr: s.lr, warmupSteps: Math.round(s.warmupEpochs * optimizerSteps), totalSteps: s.epochs * optimizerSteps },
    adamw: { weightDecay: s.weightDecay },
  };
  // Without augmentation, what the frozen layers output is computed once (see featureCache).
  const cache = isOff(augment) && s.featureCache !== false;
  const probe = cache && s.trainable === 'head' ? await LinearProbe.create(model, name, data, options) : null;
  const first = firstTrainableBlock(model.family, model.config, s.trainable);
  const frozenBytes = (ds.count + data.holdout.count) * (numel(model.family.planner(model.config, 1, S).blockInput(first)) * 4);
  const fromBlock = cache && !probe && first > 0 && frozenBytes <= FROZEN_OUTPUT_BYTES ? first : 0;
  const full = probe ? null : await Trainer.create(model, name, { ...options, fromFirstTrainable: fromBlock > 0 });
  const trainer = probe?.trainer ?? full!;
  // Planned at the first evaluation and kept for the others.
  let evalPlan: ForwardPlan | null = null;
  let evalAccuracy = Number.NaN;
  let stopped = false;
  try {
    let firstEpoch = 0;
    if (resumeFrom) firstEpoch = trainer.restore(resumeFrom);
    const firstStep = trainer.step;
    // What steps and evaluation read: the images, or the frozen blocks' output for each.
    let fed = data;
    // After a restore, so the frozen layers are the checkpoint's.
    if (probe || fromBlock > 0) {
      const f0 = performance.now();
      const total = ds.count + data.holdout.count;
      const onImages = (done: number) => {
        if (hooks.shouldStop?.()) throw new StopRequested('training stopped while computing features');
        const rate = done / ((performance.now() - f0) / 1000);
        hooks.onProgress?.({ epoch: firstEpoch, epochs: s.epochs, step: 0, stepsPerEpoch, loss: Number.NaN, accuracy: Number.NaN, imagesPerSecond: rate, secondsLeft: (total - done) / rate, features: { done, total } });
      };
      try {
        if (probe) await probe.computeFeatures(onImages);
        else {
          fed = {
            train: await frozenOutputs(model, fromBlock, ds, batch, onImages),
            holdout: await frozenOutputs(model, fromBlock, data.holdout, batch, (done) => onImages(ds.count + done)),
          };
        }
      } catch (e) {
        if (!(e instanceof StopRequested)) throw e;
        stopped = true;
      }
      checkDevice(hooks);
    }
    const per = fed.train.inputs.length / ds.count;
    const input = new Float32Array(probe ? 0 : batch * per); // the probe steps on cached features
    const targets = new Float32Array(batch);
    const t0 = performance.now();
    let seen = 0;
    for (let epoch = firstEpoch; epoch < s.epochs && !stopped; epoch++) {
      const order = shuffled(ds.count, s.seed + epoch); // seeded per epoch: a resumed run sees the same order
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
          rows.forEach((i, b) => input.set(fed.train.inputs.subarray(i * per, (i + 1) * per), b * per));
          // Mixing folds the smoothing into soft targets [B, K]; the randomness is fixed by seed and step.
          const aug = isOff(augment) ? { images: input, targets }
            : augmentBatch(input, targets, { n: batch, c: C, h: S, w: S }, { mean, std, numClasses: K, smoothing: s.smoothing }, augment, seededRandom(s.seed, epoch * stepsPerEpoch + step));
          r = await full!.trainStep(aug.images, aug.targets);
        }
        checkDevice(hooks);
        if (r.skipped) throw new Error(`training stopped: the loss became ${r.loss} at step ${r.step} (learning rate ${r.lr.toExponential(2)} too high?); the last good weights are kept`);
        seen += batch;
        const elapsed = (performance.now() - t0) / 1000;
        const rate = seen / elapsed;
        const remaining = ((s.epochs - epoch - 1) * stepsPerEpoch + (stepsPerEpoch - step - 1)) * batch;
        hooks.onProgress?.({ epoch, epochs: s.epochs, step: step + 1, stepsPerEpoch, loss: r.loss, accuracy: r.accuracy, imagesPerSecond: rate, secondsLeft: remaining / rate });
      }
      if (stopped) break;
      if (probe) evalAccuracy = await probe.evaluate();
      else evalAccuracy = await evaluate((evalPlan ??= await planForward(model, { batch, fromBlock })), model, fed.holdout);
      checkDevice(hooks);
      let warning = split;
      if (hooks.saveCheckpoint) {
        const bytes = await trainer.checkpoint(epoch + 1);
        checkDevice(hooks);
        await hooks.saveCheckpoint(bytes, epoch + 1).catch((e: unknown) => {
          warning = [split, e instanceof Error ? e.message : String(e)].filter(Boolean).join('; ');
        });
      }
      hooks.onProgress?.({ epoch, epochs: s.epochs, step: stepsPerEpoch, stepsPerEpoch, loss: Number.NaN, accuracy: Number.NaN, imagesPerSecond: seen / ((performance.now() - t0) / 1000), secondsLeft: 0, evalAccuracy, ...(warning && { warning }) });
    }
    return { epochs: s.epochs, evalAccuracy, stopped, steps: trainer.step - firstStep };
  } finally {
    (probe ?? trainer).destroy();
    evalPlan?.destroy();
  }
}
