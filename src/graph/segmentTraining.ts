// The dense head's training step through the backbone: the forward pass from the image with saved
// activations, the head on the final norm's tokens (prefix tokens skipped), the per-pixel loss, and
// the backward pass through the head, the final norm and the trainable blocks (the last k, or all
// with the embedding). Gradients of the backbone's trainable parameters and the head's share one
// arena, in parameter order then the head's, so AdamW and checkpoints treat them as one model.
// The classifier, if the backbone has one, takes no part. Legend as in graph/segment.ts.
import { submit, type Dispatch } from '../gpu/dispatch';
import { createArena, numel, writeTensor, type Tensor } from '../gpu/tensor';
import { pixelLoss } from '../kernels/segmentation';
import { planForward, type ForwardPlan } from './forward';
import { segHeadForward } from './layers/segHead';
import type { Model } from './model';
import { PlanBuilder, type ParamStore } from './plan';
import { SEG_HEAD, type SegHead, type SegPlan } from './segment';
import { checkGradientsFit, firstTrainableBlock, trainableNames } from './training';

export interface SegTrainingOptions {
  batch: number;
  /** What of the backbone trains beside the head. */
  trainable: 'all' | { lastBlocks: number };
  microBatches?: number;
}

/** A step from images: `run` and `predict` take [B, C, S, S] images instead of tokens. */
export interface SegTrainingPlan extends Omit<SegPlan, 'tokens'> {
  readonly forward: ForwardPlan;
  /** The backbone's and the head's parameters, for the optimizer. */
  readonly params: ParamStore;
  isNoDecay(name: string): boolean;
}

export async function planSegmentationTraining(model: Model, head: SegHead, o: SegTrainingOptions): Promise<SegTrainingPlan> {
  const { gpu, family, config: c } = model;
  const B = o.batch;
  const M = o.microBatches ?? 1;
  if (!Number.isInteger(M) || M < 1) throw new Error(`segmentation: microBatches must be a positive integer, got ${M}`);
  const classifier = new Set(family.parameterGroups(c).classifier);
  const backbone = trainableNames(family, c, o.trainable).filter((n) => !classifier.has(n));
  const first = firstTrainableBlock(family, c, o.trainable);
  const params: ParamStore = {
    gpu, params: new Map([...model.params, ...head.params]),
    param: (name) => (head.params.has(name) ? head.param(name) : model.param(name)),
  };
  const shapes = [...family.parameterShapes(c).filter(([n]) => backbone.includes(n)), ...head.shapes];
  checkGradientsFit(gpu, shapes, 'segmentation');
  const arena = createArena(gpu, 'seg grads', Object.fromEntries(shapes));
  let fwd: ForwardPlan | undefined;
  const b = new PlanBuilder(params, `seg training B=${B}`);
  b.grads = new Map(Object.entries(arena.tensors));
  let forward: Dispatch[];
  let step: Dispatch[];
  let logits: Tensor;
  const loss = b.tensor([B * c.imageSize * c.imageSize], 'pixel loss');
  const targets = b.tensor([B * c.imageSize * c.imageSize], 'pixel targets');
  try {
    fwd = await planForward(model, { batch: B, training: true, keepFrom: first });
    const neck = fwd.neck!;
    const [, T] = neck.normed.shape as [number, number];
    const grid = fwd.planner.blockAttention(fwd.planner.depth - 1).grid;
    const S = c.imageSize;
    const plan = segHeadForward(b, SEG_HEAD, neck.normed, { widths: head.widths, grid, size: [S, S], prefix: T - grid[0] * grid[1] });
    logits = plan.logits;
    forward = [...fwd.dispatches, ...(await b.dispatches())];
    const dlogits = b.tensor(logits.shape, 'd pixel logits');
    b.add(pixelLoss(gpu, { logits, targets, loss, dlogits, gradScale: 1 / (numel(loss.shape) * M), label: 'pixel loss' }));
    const dnormed = b.tensor(neck.normed.shape, 'd normed');
    plan.backward(b, dlogits, dnormed);
    let stream = b.tensor(fwd.output.shape, 'd stream');
    neck.normedBackward(b, dnormed, stream);
    for (let i = fwd.blocks.length - 1; i >= 0 && fwd.fromBlock + i >= first; i--) stream = fwd.blocks[i]!.backward(b, stream);
    if (family.parameterGroups(c).stem.some((n) => b.grads.has(n))) fwd.embed!.backward(b, stream);
    step = [...fwd.dispatches, ...(await b.dispatches())];
  } catch (e) {
    await b.abandon();
    fwd?.destroy();
    for (const buffer of arena.buffers) buffer.destroy();
    throw e;
  }
  const gradsBuffer = arena.buffers[0]!;
  const input = fwd.input;
  const owned = step.slice(fwd.dispatches.length);
  const headNames = new Set(head.shapes.map(([n]) => n));
  const plannedForward = fwd;
  return {
    forward: fwd, params, trainable: shapes.map(([n]) => n), grads: b.grads,
    gradsFlat: { buffer: gradsBuffer, offset: 0, shape: [gradsBuffer.size / 4], label: 'seg grads' },
    logits, loss, bytes: fwd.bytes + b.bytes + arena.bytes,
    isNoDecay: (name) => (headNames.has(name) ? head.isNoDecay(name) : family.isNoDecay(name)),
    run(images, targetValues, options = {}) {
      writeTensor(gpu, input, images);
      writeTensor(gpu, targets, targetValues);
      submit(gpu, step, 'seg training step', (options.zeroGrads ?? true) ? (encoder) => encoder.clearBuffer(gradsBuffer) : undefined);
    },
    predict(images) {
      writeTensor(gpu, input, images);
      submit(gpu, forward, 'seg predict');
    },
    destroy() {
      for (const d of owned) d.destroy();
      plannedForward.destroy();
      gradsBuffer.destroy();
      b.destroyTensors();
    },
  };
}
