// The dense head on the GPU beside a backbone: its parameters (`seg_head.fc1`, `.fc2`, ... as the
// seed's nn.Sequential Linear layers 0, 2, 4), and its planned step: the head on a batch of
// tokens (the backbone's final-norm output, prefix tokens included or not), the per-pixel loss and
// the head's gradients in one arena, or the head alone for predictions. The frozen-backbone run
// computes the tokens once and feeds every step from them (engine/segment.ts).
// Legend: B batch, T tokens per image, D width, P = H * W pixels, K outputs.
import type { Gpu } from '../gpu/device';
import { submit, type Dispatch } from '../gpu/dispatch';
import { createArena, readTensors, writeTensor, type Tensor } from '../gpu/tensor';
import { pixelLoss } from '../kernels/segmentation';
import { mulberry32 } from '../training/random';
import { segHeadForward, segHeadShapes, type SegHeadShape } from './layers/segHead';
import type { HostWeights, ParamShapes } from './model';
import { checkWeights } from './model';
import { PlanBuilder, type ParamStore } from './plan';
import { checkGradientsFit } from './training';

/** The head's parameters' prefix in checkpoints and exports. */
export const SEG_HEAD = 'seg_head';
/** The seed's hidden widths: D -> 256 -> 128 -> 1 with GELU. */
export const SEED_HIDDEN: readonly number[] = [256, 128];

export interface SegHeadConfig {
  /** Widths of the per-pixel MLP's hidden layers (the seed's [256, 128]); [] is the linear probe. */
  hidden: number[];
  /** 1: a binary mask (sigmoid per pixel); K >= 2: K classes (softmax per pixel). */
  outputs: number;
  /** Class names, for K classes. */
  labels?: string[];
}

export function checkSegHeadConfig(c: SegHeadConfig): void {
  if (!Array.isArray(c.hidden) || c.hidden.some((w) => !Number.isInteger(w) || w <= 0)) throw new Error(`segmentation: hidden must be a list of positive integer widths, got ${JSON.stringify(c.hidden)}`);
  if (!Number.isInteger(c.outputs) || c.outputs < 1) throw new Error(`segmentation: outputs must be 1 (a binary mask) or the number of classes, got ${c.outputs}`);
}

/** [D, hidden..., K]. */
export function segHeadWidths(c: SegHeadConfig, width: number): number[] {
  return [width, ...c.hidden, c.outputs];
}

/**
 * Fresh weights as PyTorch's nn.Linear starts them (the seed's head): weight and bias uniform in
 * +-1/sqrt(fan_in). Seeded.
 */
export function initSegHead(c: SegHeadConfig, width: number, seed = 0): HostWeights {
  const uniform = mulberry32(seed);
  const weights: HostWeights = new Map();
  const shapes = segHeadShapes(SEG_HEAD, segHeadWidths(c, width));
  for (const [name, shape] of shapes) {
    const fanIn = shapes.find(([n]) => n === name.replace(/bias$/, 'weight'))![1][1]!;
    const bound = 1 / Math.sqrt(fanIn);
    weights.set(name, { shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (2 * uniform() - 1) * bound) });
  }
  return weights;
}

/** The head's parameters on the GPU, one arena, looked up by name as a model's are. */
export class SegHead implements ParamStore {
  private constructor(
    readonly gpu: Gpu,
    readonly config: SegHeadConfig,
    readonly widths: readonly number[],
    readonly shapes: ParamShapes,
    readonly params: ReadonlyMap<string, Tensor>,
    private readonly buffers: GPUBuffer[],
  ) {}

  /** For tokens `width` wide; the weights are checked against the config's shapes. */
  static create(gpu: Gpu, config: SegHeadConfig, width: number, weights: HostWeights): SegHead {
    checkSegHeadConfig(config);
    const widths = segHeadWidths(config, width);
    const shapes = segHeadShapes(SEG_HEAD, widths);
    checkWeights(shapes, weights);
    const arena = createArena(gpu, 'seg head', Object.fromEntries(shapes));
    for (const [name] of shapes) writeTensor(gpu, arena.tensors[name]!, weights.get(name)!.data);
    return new SegHead(gpu, config, widths, shapes, new Map(Object.entries(arena.tensors)), arena.buffers);
  }

  param(name: string): Tensor {
    const t = this.params.get(name);
    if (!t) throw new Error(`the segmentation head has no parameter ${name}`);
    return t;
  }

  /** Biases take no weight decay (timm exempts every 1-D parameter). */
  isNoDecay(name: string): boolean {
    return name.endsWith('.bias');
  }

  upload(weights: HostWeights): void {
    checkWeights(this.shapes, weights);
    for (const [name, t] of this.params) writeTensor(this.gpu, t, weights.get(name)!.data);
  }

  async download(): Promise<HostWeights> {
    const entries = [...this.params];
    const data = await readTensors(this.gpu, entries.map(([, t]) => t));
    return new Map(entries.map(([name, t], i) => [name, { shape: t.shape, data: data[i]! }]));
  }

  destroy(): void {
    for (const b of this.buffers) b.destroy();
  }
}

export interface SegPlanOptions extends Omit<SegHeadShape, 'widths'> {
  batch: number;
  /** Tokens per image (prefix + grid). */
  tokens: number;
  /** Micro-batches accumulated into one optimizer step: each adds its share of the step's mean gradient. */
  microBatches?: number;
}

export interface SegPlan {
  readonly trainable: readonly string[];
  readonly grads: ReadonlyMap<string, Tensor>;
  readonly gradsFlat: Tensor;
  /** [B, T, D] what `run` and `predict` upload. */
  readonly tokens: Tensor;
  /** [B * P, K] */
  readonly logits: Tensor;
  /** [B * P] per-pixel loss; the step's loss is their mean. */
  readonly loss: Tensor;
  readonly bytes: number;
  /** One training step on tokens [B, T, D] and targets [B * P] (see kernels/segmentation pixelLoss). */
  run(tokens: Float32Array, targets: Float32Array, options?: { zeroGrads?: boolean }): void;
  /** The logits alone. */
  predict(tokens: Float32Array): void;
  destroy(): void;
}

export async function planSegmentation(head: SegHead, o: SegPlanOptions): Promise<SegPlan> {
  const { gpu } = head;
  const B = o.batch;
  if (!Number.isInteger(B) || B <= 0) throw new Error(`segmentation: batch must be a positive integer, got ${B}`);
  const M = o.microBatches ?? 1;
  if (!Number.isInteger(M) || M < 1) throw new Error(`segmentation: microBatches must be a positive integer, got ${M}`);
  const [D, K] = [head.widths[0]!, head.widths.at(-1)!];
  const P = o.size[0] * o.size[1];
  const trainable = head.shapes.map(([n]) => n);
  checkGradientsFit(gpu, head.shapes, 'segmentation');
  const arena = createArena(gpu, 'seg grads', Object.fromEntries(head.shapes));
  const b = new PlanBuilder(head, `seg head B=${B}`);
  b.grads = new Map(Object.entries(arena.tensors));
  let forward: Dispatch[];
  let step: Dispatch[];
  let plan;
  const tokens = b.tensor([B, o.tokens, D], 'tokens');
  const targets = b.tensor([B * P], 'pixel targets');
  const loss = b.tensor([B * P], 'pixel loss');
  try {
    plan = segHeadForward(b, SEG_HEAD, tokens, { ...o, widths: head.widths });
    forward = await b.dispatches();
    const dlogits = b.tensor([B * P, K], 'd pixel logits');
    b.add(pixelLoss(gpu, { logits: plan.logits, targets, loss, dlogits, gradScale: 1 / (B * P * M), label: 'pixel loss' }));
    plan.backward(b, dlogits);
    step = await b.dispatches();
  } catch (e) {
    await b.abandon();
    for (const buffer of arena.buffers) buffer.destroy();
    throw e;
  }
  const gradsBuffer = arena.buffers[0]!;
  const backward = step.slice(forward.length);
  return {
    trainable, grads: b.grads, gradsFlat: { buffer: gradsBuffer, offset: 0, shape: [gradsBuffer.size / 4], label: 'seg grads' },
    tokens, logits: plan.logits, loss, bytes: b.bytes + arena.bytes,
    run(input, targetValues, options = {}) {
      writeTensor(gpu, tokens, input);
      writeTensor(gpu, targets, targetValues);
      submit(gpu, step, 'seg head step', (options.zeroGrads ?? true) ? (encoder) => encoder.clearBuffer(gradsBuffer) : undefined);
    },
    predict(input) {
      writeTensor(gpu, tokens, input);
      submit(gpu, forward, 'seg head predict');
    },
    destroy() {
      for (const d of [...forward, ...backward]) d.destroy();
      gradsBuffer.destroy();
      b.destroyTensors();
    },
  };
}
