// Training a model on the GPU: the planned step (forward, loss, backward), AdamW with warmup and
// cosine decay, gradient accumulation, checkpoints. DOM-free; the worker drives it for the UI.
import { withErrorScopes } from '../gpu/errors';
import { readTensors, type Tensor } from '../gpu/tensor';
import type { Model } from '../graph/model';
import { planTraining, type Trainable } from '../graph/training';
import { argmax, countCorrect } from './accuracy';
import { checkCompatible, parseCheckpoint, serializeCheckpoint } from './checkpoint';
import { ADAMW_DEFAULTS, AdamW, type AdamWConfig } from './optimizer';
import { learningRate, type Schedule } from './schedule';

/** Label smoothing when the options give none: the DeiT recipe's. */
export const DEFAULT_SMOOTHING = 0.1;

export interface TrainerOptions {
  /** Micro-batch size: what one GPU step holds. */
  batch: number;
  trainable?: Trainable;
  /** Label smoothing (hard labels); 0.1 in the DeiT recipe. */
  smoothing?: number;
  softTargets?: boolean;
  /** Steps take the first trainable block's input instead of images (see planTraining). */
  fromFirstTrainable?: boolean;
  /**
   * Micro-batches per optimizer step (gradient accumulation): the step's gradient is the mean over
   * all of them, as one batch of accumulation * batch; the plan must be planned with as many.
   */
  accumulation?: number;
  schedule: Schedule;
  adamw?: Partial<AdamWConfig>;
}

export interface StepResult {
  /** Optimizer steps taken so far. */
  step: number;
  /** Mean loss of this micro-batch. */
  loss: number;
  /** Fraction of this micro-batch classified correctly (by its hard label or the soft target's argmax). */
  accuracy: number;
  lr: number;
  /** The loss was NaN or Inf: the update was skipped and the weights kept. */
  skipped: boolean;
}

/**
 * What a Trainer drives: a planned step from an input (images for the whole model, rows of cached
 * features for the linear probe) and targets to the loss, the logits and the gradients of the
 * trainable parameters, by parameter name in one arena.
 */
export interface StepPlan<In> {
  readonly trainable: readonly string[];
  readonly grads: ReadonlyMap<string, Tensor>;
  readonly gradsFlat: Tensor;
  /** [B] per-example loss of each classifier head; the loss is their mean. */
  readonly losses: readonly Tensor[];
  /** [B, K] */
  readonly logits: Tensor;
  /** GPU bytes the plan holds. */
  readonly bytes: number;
  /** Submits one micro-batch; `zeroGrads` (default true) clears the gradients first. */
  run(input: In, targets: Float32Array, options?: { zeroGrads?: boolean }): void;
  destroy(): void;
}

export class Trainer<In = Float32Array> {
  private micro = 0;
  private constructor(
    readonly model: Model,
    readonly name: string,
    readonly options: TrainerOptions,
    readonly plan: StepPlan<In>,
    readonly optimizer: AdamW,
  ) {}

  /** Trains `options.trainable` of the whole model on image batches (or block inputs, see `fromFirstTrainable`). */
  static async create(model: Model, name: string, options: TrainerOptions): Promise<Trainer> {
    const plan = await planTraining(model, {
      batch: options.batch, trainable: options.trainable, smoothing: options.smoothing ?? DEFAULT_SMOOTHING, softTargets: options.softTargets,
      fromFirstTrainable: options.fromFirstTrainable, microBatches: options.accumulation,
    });
    return Trainer.forPlan(model, name, options, plan);
  }

  /** Trains what `plan` computes gradients for; the Trainer owns the plan from here on. */
  static async forPlan<In>(model: Model, name: string, options: TrainerOptions, plan: StepPlan<In>): Promise<Trainer<In>> {
    const accumulation = options.accumulation ?? 1;
    if (!Number.isInteger(accumulation) || accumulation < 1) {
      plan.destroy();
      throw new Error(`training: accumulation must be a positive integer, got ${accumulation}`);
    }
    const optimizer = await AdamW.create(model.gpu, model, (n) => model.family.isNoDecay(n), plan.grads, plan.gradsFlat, { ...ADAMW_DEFAULTS, ...options.adamw });
    return new Trainer(model, name, options, plan, optimizer);
  }

  get step(): number {
    return this.optimizer.step;
  }

  /**
   * One micro-batch: input as the plan reads it (for `create`: images [batch, C, S, S] NCHW, or
   * block inputs [batch, T, D] with `fromFirstTrainable`),
   * targets as class indices [batch] (or soft rows [batch, K]). The optimizer steps after every
   * `accumulation` micro-batches.
   */
  async trainStep(input: In, targets: Float32Array): Promise<StepResult> {
    const { plan, model } = this;
    const B = this.options.batch;
    const K = model.config.numClasses;
    if (!this.options.softTargets) {
      const bad = targets.findIndex((l) => !Number.isInteger(l) || l < 0 || l >= K);
      if (bad >= 0) throw new Error(`training: label ${targets[bad]} of example ${bad} is outside [0, ${K})`);
    }
    const accumulation = this.options.accumulation ?? 1;
    const lr = learningRate(this.options.schedule, this.optimizer.step + 1);
    const [logits, ...losses] = await withErrorScopes(model.gpu.device, () => `training step ${this.optimizer.step + 1} (batch ${B})`, async () => {
      plan.run(input, targets, { zeroGrads: this.micro === 0 });
      this.micro = (this.micro + 1) % accumulation;
      if (this.micro === 0) this.optimizer.apply(lr);
      return readTensors(model.gpu, [plan.logits, ...plan.losses]);
    }) as [Float32Array, ...Float32Array[]];
    const loss = losses.reduce((sum, l) => sum + l.reduce((a, b) => a + b, 0) / B, 0) / losses.length;
    const labels = this.options.softTargets ? Int32Array.from({ length: B }, (_, b) => argmax(targets.subarray(b * K, (b + 1) * K))) : targets;
    return { step: this.optimizer.step, loss, accuracy: countCorrect(logits, K, labels, B) / B, lr, skipped: !Number.isFinite(loss) };
  }

  /** Everything needed to continue this run exactly: weights, moments, step. */
  async checkpoint(epoch: number): Promise<Uint8Array> {
    return serializeCheckpoint({
      name: this.name, config: this.model.config, step: this.optimizer.step, epoch,
      weights: await this.model.download(), optimizer: await this.optimizer.state(),
    });
  }

  /** Continues from a checkpoint of the same model; returns its epoch. Refuses another model's. */
  restore(bytes: ArrayBuffer | Uint8Array): number {
    const ckpt = parseCheckpoint(bytes);
    checkCompatible({ name: this.name, config: this.model.config }, ckpt);
    this.model.upload(ckpt.weights);
    this.optimizer.restore(ckpt.optimizer, ckpt.step);
    this.micro = 0;
    return ckpt.epoch;
  }

  destroy(): void {
    this.optimizer.destroy();
    this.plan.destroy();
  }
}
