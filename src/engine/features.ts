// Backbone features, as timm's forward_intermediates: the outputs of the blocks a user names, each
// split into its class tokens, register tokens and patch map, before or after the final norm,
// plus the pooled features the classifier head reads, without computing the head.
import type { TokenLayout } from '../graph/family';

export interface FeatureOptions {
  /** Blocks whose outputs to return, counted from 0, or from the end when negative (-1: the last). Default [-1]. */
  blocks?: number[];
  /**
   * Each map through the model's final norm where the family applies it there (timm's
   * forward_intermediates `norm`): every block of a ViT whose norm sits over the tokens, a Swin's
   * last block only, nothing for a ViT with fc_norm or none. Default true.
   */
  norm?: boolean;
  /** Also what the (first) classifier head reads: this runs every block and the neck. Default true. */
  pooled?: boolean;
}

/** One block's output for one image. */
export interface FeatureMap {
  /** The block, counted from 0. */
  block: number;
  /** Whether the final norm was applied. */
  normed: boolean;
  /** The patch map (rows, columns) and its channels. */
  grid: [number, number];
  dim: number;
  /** [rows, columns, dim], row-major, channels last: the patch tokens as a map. */
  patches: Float32Array;
  /** [classTokens, dim]: the class token, then DeiT's distillation token; empty where there is none. */
  classTokens: Float32Array;
  /** [registers, dim]; empty where there are none. */
  registers: Float32Array;
}

export interface FeaturesResult {
  /** [F]: what the first classifier head reads (the class token after the final norm, or the pooled patches); with `pooled`. */
  pooled?: Float32Array;
  /** One per requested block, in the order asked. */
  maps: FeatureMap[];
}

/** The requested blocks as indices from 0, each checked against the model's depth. */
export function resolveBlocks(blocks: readonly number[], depth: number): number[] {
  if (blocks.length === 0) throw new Error('features: blocks is empty; name at least one block (-1 is the last)');
  return blocks.map((i) => {
    if (!Number.isInteger(i) || i >= depth || i < -depth) {
      throw new Error(`features: block ${i} does not exist: this model has ${depth} blocks (0 to ${depth - 1}, or -${depth} to -1 from the end)`);
    }
    return i < 0 ? depth + i : i;
  });
}

/** Image b's tokens of a block output [B, T, dim] read back, split by the layout. */
export function splitTokens(out: Float32Array, b: number, layout: TokenLayout, block: number, normed: boolean): FeatureMap {
  const { classTokens, registers, grid, dim } = layout;
  const T = classTokens + registers + grid[0] * grid[1];
  const at = (token: number) => (b * T + token) * dim;
  return {
    block, normed, grid: [...grid], dim,
    classTokens: out.slice(at(0), at(classTokens)),
    registers: out.slice(at(classTokens), at(classTokens + registers)),
    patches: out.slice(at(classTokens + registers), at(T)),
  };
}
