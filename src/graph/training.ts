// One training step of any model family, planned once: the forward pass with saved activations,
// the loss, and the backward pass through every trainable part, writing parameter gradients into
// one arena. Gradients always accumulate into the arena, so gradient accumulation over
// micro-batches is running several steps before the optimizer; `run` clears the arena first when
// asked. The residual stream's gradient lives in one buffer per shape that blocks update in place.
import type { Gpu } from '../gpu/device';
import { submit, type Dispatch } from '../gpu/dispatch';
import { align, bindingLimitName, createArena, numel, writeTensor, type Tensor } from '../gpu/tensor';
import { formatBytes, formatCount } from '../limits';
import { classifierBackward, type Targets } from './layers/classifier';
import type { ModelFamily } from './family';
import { planForward, type ForwardPlan } from './forward';
import type { Model } from './model';
import { PlanBuilder } from './plan';

/** What trains: everything, the classifier alone (a linear probe), or the last k blocks with the neck and classifier. */
export type Trainable = 'all' | 'head' | { lastBlocks: number };

export interface TrainingPlanOptions {
  batch: number;
  trainable?: Trainable;
  /** Label smoothing for hard labels. */
  smoothing?: number;
  /** Targets are rows of class probabilities (mixup, cutmix) instead of labels. */
  softTargets?: boolean;
  /** Micro-batches accumulated into one optimizer step (default 1): each adds its share of the step's mean gradient. */
  microBatches?: number;
  /**
   * The step starts at the first trainable block: `run` takes that block's input, what the frozen
   * blocks before it output (computed once, see planForward's toBlock), instead of images.
   */
  fromFirstTrainable?: boolean;
}

export interface TrainingPlan {
  readonly forward: ForwardPlan;
  /** [B, K] the forward pass's logits (the heads' mean). */
  readonly logits: Tensor;
  /** Names of the trainable parameters, in parameter order. */
  readonly trainable: readonly string[];
  /** Gradient of the mean loss for each trainable parameter. */
  readonly grads: ReadonlyMap<string, Tensor>;
  /** The whole gradient arena as one flat tensor (for the global norm). */
  readonly gradsFlat: Tensor;
  /** Per-example loss [B] of each classifier head; the loss is their mean. */
  readonly losses: readonly Tensor[];
  readonly dispatches: readonly Dispatch[];
  readonly bytes: number;
  /**
   * Uploads a batch (images, or block inputs with fromFirstTrainable) and submits forward and
   * backward. Labels are class indices [B]; soft targets are [B, K]. `zeroGrads` (default true)
   * clears the gradients first; pass false to accumulate micro-batches into one effective batch.
   */
  run(input: Float32Array, targets: Float32Array, options?: { zeroGrads?: boolean }): void;
  destroy(): void;
}

/** The trainable parameters' names, in parameter order. */
export function trainableNames<C extends Model['config']>(family: ModelFamily<C>, config: C, trainable: Trainable): string[] {
  const names = family.parameterShapes(config).map(([n]) => n);
  if (trainable === 'all') return names;
  const groups = family.parameterGroups(config);
  if (trainable === 'head') return groups.classifier;
  const k = trainable.lastBlocks;
  const depth = groups.blocks.length;
  if (!Number.isInteger(k) || k < 0 || k > depth) throw new Error(`training: lastBlocks must be an integer in [0, ${depth}], got ${k}`);
  const chosen = new Set([...groups.blocks.slice(depth - k).flat(), ...groups.neck, ...groups.classifier]);
  return names.filter((n) => chosen.has(n));
}

/** The first block with trainable parameters (the depth when none has). */
export function firstTrainableBlock<C extends Model['config']>(family: ModelFamily<C>, config: C, trainable: Trainable): number {
  const { blocks } = family.parameterGroups(config);
  const names = new Set(trainableNames(family, config, trainable));
  const first = blocks.findIndex((block) => block.some((n) => names.has(n)));
  return first < 0 ? blocks.length : first;
}

export async function planTraining(model: Model, opts: TrainingPlanOptions): Promise<TrainingPlan> {
  const { gpu, family, config: c } = model;
  const B = opts.batch;
  const trainableSpec = opts.trainable ?? 'all';
  if (family.classifierHeads(c).length === 0) throw new Error('training: this model has no classifier (numClasses 0, a backbone); give it classes to train a head');
  const trainable = trainableNames(family, c, trainableSpec);
  const groups = family.parameterGroups(c);
  // Gradients stop at the first trainable block: the blocks before it keep no activations.
  const first = firstTrainableBlock(family, c, trainableSpec);
  const microBatches = opts.microBatches ?? 1;
  if (!Number.isInteger(microBatches) || microBatches < 1) throw new Error(`training: microBatches must be a positive integer, got ${microBatches}`);
  const arena = createGradArena(model, trainable);
  let fwd: ForwardPlan;
  try {
    fwd = await planForward(model, { batch: B, training: true, keepFrom: first, fromBlock: opts.fromFirstTrainable ? first : 0 });
  } catch (e) {
    arena.gradsFlat.buffer.destroy();
    throw e;
  }
  const b = new PlanBuilder(model, `backward B=${B}`);
  b.grads = arena.grads;
  try {
    const heads = family.classifierHeads(c);
    const K = c.numClasses;
    const targets = b.tensor(opts.softTargets ? [B, K] : [B], 'targets');
    const target: Targets = opts.softTargets ? { soft: targets } : { labels: targets, smoothing: opts.smoothing ?? 0 };
    const losses = heads.map((h) => b.tensor([B], `${h} loss`));
    const trainsBody = trainable.some((n) => !groups.classifier.includes(n));
    const neck = fwd.neck!;
    const dfeatures = trainsBody ? neck.features.map((f, i) => b.tensor(f.shape, `d features ${i}`)) : undefined;
    classifierBackward(b, heads, fwd.classifier!, { targets: target, losses, dfeatures, microBatches });
    if (dfeatures) {
      let stream = b.tensor(fwd.output.shape, 'd stream');
      neck.backward(b, dfeatures, stream);
      for (let i = fwd.blocks.length - 1; i >= 0 && fwd.fromBlock + i >= first; i--) stream = fwd.blocks[i]!.backward(b, stream);
      if (groups.stem.some((n) => arena.grads.has(n))) {
        // The embedding trains only with everything, so the step starts at the image.
        fwd.embed!.backward(b, stream);
      }
    }
    const backward = await b.finish();
    const dispatches = [...fwd.dispatches, ...backward];
    const gradsBuffer = arena.gradsFlat.buffer;
    return {
      forward: fwd, logits: fwd.logits, trainable, grads: arena.grads, gradsFlat: arena.gradsFlat, losses, dispatches,
      bytes: fwd.bytes + arena.bytes + b.bytes,
      run(input, targetValues, options = {}) {
        writeTensor(gpu, fwd.input, input);
        writeTensor(gpu, targets, targetValues);
        const zero = options.zeroGrads ?? true;
        submit(gpu, dispatches, 'training step', zero ? (encoder) => encoder.clearBuffer(gradsBuffer) : undefined);
      },
      destroy() {
        for (const d of backward) d.destroy();
        fwd.destroy();
        gradsBuffer.destroy();
        b.destroyTensors();
      },
    };
  } catch (e) {
    await b.abandon();
    fwd.destroy();
    arena.gradsFlat.buffer.destroy();
    throw e;
  }
}

/**
 * The trainable parameters' shapes, once their gradients are known to fit one binding: they are one
 * buffer, bound whole for the global gradient norm, so no batch makes them smaller.
 */
export function fittingGradientShapes(model: Model, trainable: readonly string[]): [string, number[]][] {
  const names = new Set(trainable);
  const shapes = model.family.parameterShapes(model.config).filter(([n]) => names.has(n));
  checkGradientsFit(model.gpu, shapes, 'training', ': train fewer of them (the last blocks, or the head)');
  return shapes;
}

/**
 * Throws unless the gradients of parameters of `shapes`, laid out in one arena as createArena lays
 * them (each view aligned), fit one binding: a gradient arena is bound whole. The message starts
 * with `what` and ends with `advice`.
 */
export function checkGradientsFit(gpu: Gpu, shapes: readonly (readonly [string, readonly number[]])[], what: string, advice = ''): void {
  const bytes = shapes.reduce((end, [, shape]) => align(end, gpu.device.limits.minStorageBufferOffsetAlignment) + numel(shape) * 4, 0);
  if (bytes > gpu.maxBindingBytes) {
    const count = shapes.reduce((n, [, shape]) => n + numel(shape), 0);
    throw new Error(`${what}: the gradients of ${formatCount(count)} trainable parameters take ${formatBytes(bytes)}, over ${bindingLimitName(gpu)}${advice}`);
  }
}

/**
 * The gradients of the trainable parameters in one arena, by parameter name and in parameter order
 * (each dispatch writes views and reads none); AdamW and checkpoints follow the same names.
 */
export function createGradArena(model: Model, trainable: readonly string[]): { grads: Map<string, Tensor>; gradsFlat: Tensor; bytes: number } {
  const { gpu } = model;
  const shapes = fittingGradientShapes(model, trainable);
  const arena = createArena(gpu, 'grads', Object.fromEntries(shapes));
  const buffer = arena.buffers[0]!;
  return { grads: new Map(Object.entries(arena.tensors)), gradsFlat: { buffer, offset: 0, shape: [buffer.size / 4], label: 'grads' }, bytes: arena.bytes };
}
