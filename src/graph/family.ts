// The port a model family implements so that the graph runner (forward.ts, training.ts, probe.ts)
// can plan it: its parameters by name, how they group for freezing, and a planner that lays out
// the three parts every family has, as timm's forward_features then forward_head:
//   embed:  image [B, C, H, W] -> block 0's input
//   blocks: block i's input -> block i + 1's input (a family may change shapes between blocks)
//   neck:   the last block's output -> the features each classifier head reads ([B, F] each)
// and the classifier heads on top, which are the same for every family (layers/classifier.ts).
// Each part plans its forward pass and returns its backward pass beside it. The graph never
// imports a family; families (src/models) build on graph/layers.
import type { Tensor } from '../gpu/tensor';
import type { MixerOptions } from './layers/block';
import type { ParamShapes } from './model';
import type { PlanBuilder } from './plan';

/** What every family's config holds: what preprocessing, the engine and training read. */
export interface ModelConfig {
  /** The family that builds this config (models/registry.ts); absent means a ViT. */
  family?: string;
  /** Training resolution (square). */
  imageSize: number;
  inChannels: number;
  numClasses: number;
  mean: number[];
  std: number[];
  /** Resize the short side to imageSize / cropPct, then centre-crop imageSize. */
  cropPct: number;
  /** Class names, index order; optional. */
  labels?: string[];
}

/** Parameter names by where they sit; "the last k blocks" trains blocks[-k:], the neck and the classifier. */
export interface ParameterGroups {
  /** Before the first block: the embedding. */
  stem: string[];
  /** Each block's own, in forward order. */
  blocks: string[][];
  /** After the last block, before the classifier: final norms. */
  neck: string[];
  /** The classifier heads. */
  classifier: string[];
}

/** A square image's side, or an image's [height, width]. */
export type ImageSize = number | readonly [number, number];

export interface ModelFamily<C extends ModelConfig = ModelConfig> {
  readonly name: string;
  /** Plans non-square images: `planner` may get [height, width]. Absent: square images only. */
  readonly nonSquare?: boolean;
  /** Throws naming the first field that makes no sense. */
  validate(config: C): void;
  parameterShapes(config: C): ParamShapes;
  parameterGroups(config: C): ParameterGroups;
  /** Tensors AdamW does not decay (norms, biases, position embeddings, tokens, bias tables). */
  isNoDecay(name: string): boolean;
  /** Attention heads of each block, in forward order (its length is the number of blocks). */
  blockHeads(config: C): number[];
  /** The classifier heads' parameter prefixes (`head`, `head_dist`, `head.fc`), one per neck feature. */
  classifierHeads(config: C): string[];
  /**
   * How timm builds this model: `timm.create_model(architecture, **model_args)`, for the
   * config.json an export carries; undefined where timm has no such model (a post-norm ViT).
   */
  timmModel(config: C): { architecture: string; model_args: Record<string, unknown> } | undefined;
  /** Plans for a batch at an image size (a size the family accepts; [height, width] only with `nonSquare`). */
  planner(config: C, batch: number, imageSize: ImageSize): FamilyPlanner;
}

/** Attention as the maps read it: per block, probabilities [B * windows, heads, N, N]. */
export interface AttentionLayout {
  /** Tokens of the image that are not patches, before the patches (class, distillation tokens). */
  prefixTokens: number;
  /** The patch grid (rows, columns) of the first block. */
  grid: [number, number];
  /** Pixels per patch side. */
  patch: number;
  /** Attention stays inside windows (Swin) rather than spanning the image. */
  windowed: boolean;
}

/**
 * Where block i's attention looks: its token map, and the windows it is cut into after a cyclic
 * shift (timm's Swin: roll by -shift, pad bottom/right to whole windows, windows row-major, tokens
 * row-major inside a window). Global attention is one window over the whole map, unshifted; its
 * prefix tokens come first in that window.
 */
export interface BlockAttention {
  grid: [number, number];
  window: [number, number];
  shift: [number, number];
}

/**
 * The tokens of one image in a block's output [B, T, dim], in order: class tokens (the class token,
 * then DeiT's distillation token), register tokens, then the patch map row-major.
 */
export interface TokenLayout {
  classTokens: number;
  registers: number;
  /** The patch map (rows, columns). */
  grid: [number, number];
  dim: number;
}

export interface FamilyPlanner {
  /** Blocks in forward order. */
  readonly depth: number;
  readonly attention: AttentionLayout;
  blockAttention(i: number): BlockAttention;
  /** What block i's output holds, token by token (features read it). */
  blockTokens(i: number): TokenLayout;
  /**
   * Plans a copy of block i's output x into a tensor of its own (a later block may overwrite x),
   * through the final norm where `norm` asks for it and the family applies it there (timm's
   * forward_intermediates(norm=True)); says whether it did.
   */
  intermediate(b: PlanBuilder, i: number, x: Tensor, norm: boolean): { out: Tensor; normed: boolean };
  /** Block i's input shape [B, ...]; blockInput(depth) is the last block's output. */
  blockInput(i: number): number[];
  embed(b: PlanBuilder, image: Tensor): Promise<EmbedPlan>;
  block(b: PlanBuilder, i: number, x: Tensor, options: MixerOptions): SegmentPlan & { readonly probs?: Tensor };
  neck(b: PlanBuilder, x: Tensor): NeckPlan;
}

export interface EmbedPlan {
  readonly out: Tensor;
  /** Gradients of the embedding's parameters from d(out). */
  backward(b: PlanBuilder, dout: Tensor): void;
}

/** A planned stretch of the forward pass (a block, a patch merging and its block) with its backward. */
export interface SegmentPlan {
  readonly out: Tensor;
  /**
   * From d(out) in `stream` to d(input), which it returns: `stream` itself, updated in place,
   * where the shapes agree, else a tensor of the input's shape.
   */
  backward(b: PlanBuilder, stream: Tensor): Tensor;
}

export interface NeckPlan {
  /** Every token after the final norm (the last block's output where there is none). */
  readonly normed: Tensor;
  /** [B, F] what each classifier head reads, in classifierHeads order. */
  readonly features: readonly Tensor[];
  /** From d(features) to d(the last block's output), written (not added) into `dx`. */
  backward(b: PlanBuilder, dfeatures: readonly Tensor[], dx: Tensor): void;
  /** From d(normed) (a dense head reads every token) to d(the last block's output), written into `dx`. */
  normedBackward(b: PlanBuilder, dnormed: Tensor, dx: Tensor): void;
}
