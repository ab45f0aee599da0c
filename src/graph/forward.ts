// The forward pass of any model family, planned once for (batch, image size, outputs): every
// activation and dispatch is created up front, so a run is one writeBuffer, one command buffer
// and the readbacks asked for. The family lays out embedding, blocks and neck (family.ts); the
// classifier heads are common to all.
//
// With `training`, blocks keep their activations for the backward pass; frozen blocks at the
// start (`keepFrom`) run as in inference, and a plan may start past them altogether (`fromBlock`)
// on what they computed once, or stop before block `toBlock` to compute exactly that.
import { submit, type Dispatch } from '../gpu/dispatch';
import { writeTensor, type Tensor } from '../gpu/tensor';
import type { EmbedPlan, FamilyPlanner, ImageSize, NeckPlan, SegmentPlan } from './family';
import { classifierForward, type ClassifierActivations } from './layers/classifier';
import type { Model } from './model';
import { PlanBuilder } from './plan';

export interface ForwardOptions {
  batch: number;
  /**
   * Input side, or [height, width] where the family takes non-square images; defaults to the
   * model's. Other sizes interpolate the position embedding.
   */
  imageSize?: ImageSize;
  /** Keep every block's attention probabilities. */
  attention?: boolean;
  /** Keep per-block activations for the backward pass. */
  training?: boolean;
  /** With `training`, blocks before this one (frozen: nothing flows back into them) keep nothing. Default 0. */
  keepFrom?: number;
  /**
   * Plan blocks [fromBlock, depth) and the head only: `run` uploads block fromBlock's input
   * (what the frozen blocks before it output, computed once) instead of an image. Default 0.
   */
  fromBlock?: number;
  /** Plan blocks [0, toBlock) alone: the plan's `output` is block toBlock's input. Default: every block and the head. */
  toBlock?: number;
  /** Blocks whose outputs the plan keeps in tensors of their own (`taps`), for features. */
  taps?: readonly number[];
  /** The taps through the final norm where the family applies it there (timm's forward_intermediates `norm`). */
  tapNorm?: boolean;
  /** Plan the classifier heads on the neck's features (default true; features need none). */
  head?: boolean;
}

export interface ForwardPlan {
  readonly batch: number;
  readonly imageSize: ImageSize;
  readonly planner: FamilyPlanner;
  /** [B, C, S, S] the image, or block fromBlock's input. */
  readonly input: Tensor;
  /** Absent when the plan starts past the embedding. */
  readonly embed?: EmbedPlan;
  /** The first planned block: `blocks[i]` is block fromBlock + i. */
  readonly fromBlock: number;
  readonly blocks: readonly (SegmentPlan & { readonly probs?: Tensor })[];
  /** The last planned block's output (the input where no block is planned). */
  readonly output: Tensor;
  /** Absent with toBlock. */
  readonly neck?: NeckPlan;
  readonly classifier?: ClassifierActivations;
  /** The tapped blocks' outputs, by block. */
  readonly taps: ReadonlyMap<number, { readonly out: Tensor; readonly normed: boolean }>;
  /**
   * [B, K] the logits (the heads' mean); [B, F] what the first head reads. With toBlock both are
   * the output; a backbone without a classifier (numClasses 0) has features and no logits, and
   * `logits` is its features.
   */
  readonly logits: Tensor;
  readonly features: Tensor;
  readonly dispatches: readonly Dispatch[];
  /** Bytes of GPU memory for activations. */
  readonly bytes: number;
  /** Uploads `input` (NCHW images, or block inputs with fromBlock) and submits the forward pass. */
  run(input: Float32Array): void;
  destroy(): void;
}

export async function planForward(model: Model, opts: ForwardOptions): Promise<ForwardPlan> {
  const { config: c, family } = model;
  const B = opts.batch;
  const S = opts.imageSize ?? c.imageSize;
  const [H, W] = typeof S === 'number' ? [S, S] : S;
  if (!Number.isInteger(B) || B <= 0) throw new Error(`forward: batch must be a positive integer, got ${B}`);
  if (H !== W && !family.nonSquare) throw new Error(`forward: the ${family.name} family takes square images only, not ${H}x${W}`);
  const planner = family.planner(c, B, H === W ? H : [H, W]);
  const depth = planner.depth;
  const fromBlock = opts.fromBlock ?? 0;
  const keepFrom = opts.keepFrom ?? 0;
  const toBlock = opts.toBlock ?? depth;
  for (const [name, v] of [['fromBlock', fromBlock], ['keepFrom', keepFrom], ['toBlock', toBlock]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > depth) throw new Error(`forward: ${name} must be an integer in [0, ${depth}], got ${v}`);
  }
  if (fromBlock > toBlock) throw new Error(`forward: fromBlock ${fromBlock} is past toBlock ${toBlock}`);
  const tapped = new Set(opts.taps ?? []);
  for (const i of tapped) {
    if (!Number.isInteger(i) || i < fromBlock || i >= toBlock) throw new Error(`forward: tapped block ${i} is not a planned block, [${fromBlock}, ${toBlock})`);
  }
  const b = new PlanBuilder(model, `B=${B} S=${H === W ? H : `${H}x${W}`}`);
  try {
    const input = fromBlock === 0 ? b.tensor([B, c.inChannels, H, W], 'input') : b.tensor(planner.blockInput(fromBlock), 'input');
    const embed = fromBlock === 0 ? await planner.embed(b, input) : undefined;
    let x = embed?.out ?? input;
    const blocks = [];
    const taps = new Map<number, { out: Tensor; normed: boolean }>();
    for (let i = fromBlock; i < toBlock; i++) {
      const block = planner.block(b, i, x, { keep: (opts.training ?? false) && i >= keepFrom, probs: opts.attention ?? false });
      blocks.push(block);
      x = block.out;
      if (tapped.has(i)) taps.set(i, planner.intermediate(b, i, x, opts.tapNorm ?? false));
    }
    const neck = toBlock === depth ? planner.neck(b, x) : undefined;
    const heads = opts.head === false ? [] : family.classifierHeads(c);
    const classifier = neck && heads.length ? classifierForward(b, heads, neck.features, c.numClasses) : undefined;
    const dispatches = await b.finish();
    return {
      batch: B, imageSize: S, planner, input, embed, fromBlock, blocks, output: x, neck, classifier, taps,
      logits: classifier?.logits ?? neck?.features[0] ?? x, features: neck?.features[0] ?? x, dispatches, bytes: b.bytes,
      run(data: Float32Array) {
        writeTensor(model.gpu, input, data);
        submit(model.gpu, dispatches, 'forward');
      },
      destroy() {
        for (const d of dispatches) d.destroy();
        b.destroyTensors();
      },
    };
  } catch (e) {
    await b.abandon();
    throw e;
  }
}
