// The configuration of a Swin Transformer (timm's SwinTransformer): a hierarchy of stages, each
// halving the resolution (patch merging, from the second stage on) and doubling the width, with
// attention inside windows that shift on every other block. Presets are data; timm and Hugging
// Face configs are read into this shape by keys.ts.
import type { ModelConfig } from '../../graph/family';
import { swinWindowLayout } from '../../kernels/swin';
import { checkPositiveInts, IMAGENET, validateModelConfig } from '../common';

export interface SwinConfig extends ModelConfig {
  family: 'swin';
  /** Input side (square); every stage's resolution follows from it. */
  imageSize: number;
  patchSize: number;
  /** Width of the first stage; stage s has embedDim * 2^s. */
  embedDim: number;
  /** Blocks per stage. */
  depths: number[];
  /** Heads per stage. */
  heads: number[];
  /** Window side; clamped per stage to that stage's resolution, where shifting then stops. */
  window: number;
  mlpRatio: number;
  qkvBias: boolean;
  /** LayerNorm epsilon (timm's Swin: 1e-5). */
  eps: number;
}

/** timm's Swin sizes, as `swin_<size>_patch<P>_window<W>_<S>` names them. */
export const SWIN_SIZES = {
  tiny: { embedDim: 96, depths: [2, 2, 6, 2], heads: [3, 6, 12, 24] },
  small: { embedDim: 96, depths: [2, 2, 18, 2], heads: [3, 6, 12, 24] },
  base: { embedDim: 128, depths: [2, 2, 18, 2], heads: [4, 8, 16, 32] },
  large: { embedDim: 192, depths: [2, 2, 18, 2], heads: [6, 12, 24, 48] },
} satisfies Record<string, Pick<SwinConfig, 'embedDim' | 'depths' | 'heads'>>;

const swin = (embedDim: number, depths: number[], heads: number[], window = 7, imageSize = 224): SwinConfig => ({
  family: 'swin', imageSize, patchSize: 4, inChannels: 3, embedDim, depths, heads, window, mlpRatio: 4, qkvBias: true, eps: 1e-5,
  ...IMAGENET, cropPct: 0.9,
});

/** timm's architectures by name, as `swin_<size>_patch4_window<w>_<img>` states them. */
export const SWIN_PRESETS = {
  'swin-tiny': swin(96, [2, 2, 6, 2], [3, 6, 12, 24]),
  'swin-small': swin(96, [2, 2, 18, 2], [3, 6, 12, 24]),
  'swin-base': swin(128, [2, 2, 18, 2], [4, 8, 16, 32]),
  'swin-base-384': { ...swin(128, [2, 2, 18, 2], [4, 8, 16, 32], 12, 384), cropPct: 1 },
  /**
   * From scratch on Fashion-MNIST: 28 px grey, patch 2, so the first stage (14x14, four 7x7
   * windows) is larger than its window and its second block shifts, with the mask; width 16 and
   * two stages keep a training step affordable on a CPU adapter.
   */
  'swin-fashion-mnist': { ...swin(16, [2, 2], [2, 4]), imageSize: 28, patchSize: 2, inChannels: 1, numClasses: 10, cropPct: 1, mean: [0.2860], std: [0.3530] },
} satisfies Record<string, SwinConfig>;

/** A stage's shapes at an input size: its resolution, width, heads, and the window its blocks use. */
export interface SwinStage {
  /** Resolution (rows, columns) of the stage's token map, after its patch merging. */
  size: [number, number];
  dim: number;
  heads: number;
  depth: number;
  /** Window side after clamping to the resolution (odd blocks shift by half of it, unless it covers the map). */
  window: number;
}

/**
 * Every stage's shapes for an image of `imageSize`, as timm computes them: stage s > 0 halves the
 * resolution, the window is clamped to the resolution, and a window covering the whole map does
 * not shift. A resolution that is not a multiple of the window is padded inside the blocks (the
 * kernels do); an odd resolution before a patch merging is refused, as timm's fixed-size model
 * cannot run it either.
 */
export function swinStages(c: SwinConfig, imageSize = c.imageSize): SwinStage[] {
  if (!Number.isInteger(imageSize) || imageSize <= 0 || imageSize % c.patchSize !== 0) {
    throw new Error(`image size ${imageSize} is not a positive multiple of the patch size ${c.patchSize}`);
  }
  let h = imageSize / c.patchSize;
  let w = h;
  return c.depths.map((depth, s) => {
    if (s > 0) {
      if (h % 2 || w % 2) throw new Error(`image size ${imageSize}: stage ${s - 1}'s ${h}x${w} tokens cannot be merged 2x2 (odd side)`);
      [h, w] = [h / 2, w / 2];
    }
    return { size: [h, w], dim: c.embedDim * 2 ** s, heads: c.heads[s]!, depth, window: swinWindowLayout(h, w, c.window, false).window[0] };
  });
}

/** Checks that a config makes sense; throws naming the first field that does not. */
export function validateSwinConfig(c: SwinConfig): void {
  validateModelConfig(c);
  checkPositiveInts(c, ['patchSize', 'embedDim', 'window']);
  if (!Array.isArray(c.depths) || c.depths.length === 0 || !c.depths.every((d) => Number.isInteger(d) && d > 0)) {
    throw new Error(`config: depths must be a list of positive integers, got ${JSON.stringify(c.depths)}`);
  }
  if (!Array.isArray(c.heads) || c.heads.length !== c.depths.length) throw new Error(`config: heads needs one entry per stage (${c.depths.length}), got ${JSON.stringify(c.heads)}`);
  if (c.imageSize % c.patchSize !== 0) throw new Error(`config: imageSize ${c.imageSize} is not a multiple of patchSize ${c.patchSize}`);
  if (!(c.mlpRatio > 0) || !Number.isInteger(c.mlpRatio * c.embedDim)) throw new Error(`config: mlpRatio ${c.mlpRatio} does not give a whole MLP width`);
  if (!(c.eps > 0)) throw new Error(`config: eps must be positive, got ${c.eps}`);
  let stages: SwinStage[];
  try {
    stages = swinStages(c);
  } catch (e) {
    throw new Error(`config: ${e instanceof Error ? e.message : String(e)}`);
  }
  for (const [s, stage] of stages.entries()) {
    if (!Number.isInteger(stage.heads) || stage.heads <= 0 || stage.dim % stage.heads !== 0) {
      throw new Error(`config: heads[${s}] = ${JSON.stringify(c.heads[s])} does not divide stage ${s}'s width ${stage.dim}`);
    }
  }
}
