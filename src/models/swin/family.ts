// The Swin family (timm's SwinTransformer): patch embedding with a LayerNorm, stages of
// shifted-window blocks (stage s > 0 starts with its patch merging, which plans and trains with
// the stage's first block), then a LayerNorm on every token, their mean, and `head.fc`.
// Legend: B batch, C channels, S image side, L_s = H_s * W_s tokens and C_s width of stage s.
import type { Tensor } from '../../gpu/tensor';
import type { FamilyPlanner, ModelFamily, SegmentPlan } from '../../graph/family';
import { blockForward } from '../../graph/layers/block';
import { layerNormBackward, layerNormForward } from '../../graph/layers/layerNorm';
import { linearBackward, linearForward } from '../../graph/layers/linear';
import type { PlanBuilder } from '../../graph/plan';
import { patchEmbed, patchEmbedBackward } from '../../kernels/patchEmbed';
import { patchMerge, patchMergeBackward, swinWindowLayout } from '../../kernels/swin';
import { copyValues, poolTokens, poolTokensBackward } from '../../kernels/tokens';
import { SWIN_SIZES, swinStages, validateSwinConfig, type SwinConfig, type SwinStage } from './config';
import { swinIsNoDecay, swinParameterGroups, swinParameterShapes } from './params';
import { windowAttention } from './windowAttention';

export const swin: ModelFamily<SwinConfig> = {
  name: 'swin',
  validate: validateSwinConfig,
  parameterShapes: swinParameterShapes,
  parameterGroups: swinParameterGroups,
  isNoDecay: swinIsNoDecay,
  blockHeads: (c) => c.depths.flatMap((d, s) => new Array<number>(d).fill(c.heads[s]!)),
  classifierHeads: () => ['head.fc'],
  timmModel: (c) => ({
    architecture: timmArchitecture(c),
    model_args: {
      img_size: c.imageSize, patch_size: c.patchSize, in_chans: c.inChannels, embed_dim: c.embedDim, depths: c.depths, num_heads: c.heads,
      window_size: c.window, mlp_ratio: c.mlpRatio, qkv_bias: c.qkvBias, num_classes: c.numClasses,
    },
  }),
  planner: swinPlanner,
};

function swinPlanner(c: SwinConfig, B: number, S: number): FamilyPlanner {
  let stages: SwinStage[];
  try {
    stages = swinStages(c, S);
  } catch (e) {
    throw new Error(`input: ${e instanceof Error ? e.message : String(e)}`);
  }
  // The bias tables hold one window size per stage: a size whose windows clamp otherwise has none.
  const trained = swinStages(c);
  const other = stages.findIndex((stage, s) => stage.window !== trained[s]!.window);
  if (other >= 0) {
    throw new Error(`input: at image size ${S} stage ${other}'s window would be ${stages[other]!.window}, but its relative position bias tables are for ${trained[other]!.window} (image size ${c.imageSize})`);
  }
  // Blocks in forward order, each with its stage and its index in the stage.
  const blocks = stages.flatMap((stage, s) => Array.from({ length: stage.depth }, (_, j) => ({ stage, s, j })));
  const shapeOf = (stage: SwinStage) => [B, stage.size[0] * stage.size[1], stage.dim];
  const P = c.patchSize;
  const [H0, W0] = stages[0]!.size;
  return {
    depth: blocks.length,
    attention: { prefixTokens: 0, grid: [H0, W0], patch: P, windowed: true },
    // A stage's first block takes the previous stage's tokens (it merges them first).
    blockInput: (i) => (i === blocks.length ? shapeOf(stages.at(-1)!) : shapeOf(blocks[i]!.j === 0 && blocks[i]!.s > 0 ? stages[blocks[i]!.s - 1]! : blocks[i]!.stage)),

    blockAttention(i) {
      const { stage, j } = blocks[i]!;
      const layout = swinWindowLayout(stage.size[0], stage.size[1], stage.window, j % 2 === 1);
      return { grid: [...stage.size], window: [...layout.window], shift: [...layout.shift] };
    },

    blockTokens: (i) => ({ classTokens: 0, registers: 0, grid: [...blocks[i]!.stage.size], dim: blocks[i]!.stage.dim }),

    intermediate(b, i, x, norm) {
      const out = b.tensor(x.shape, `block ${i} output`);
      // As timm's forward_intermediates: the final norm is the last stage's width, so it applies there only.
      if (norm && i === blocks.length - 1) {
        layerNormForward(b, 'norm', { x, y: out, stats: b.tensor([x.shape[0]! * x.shape[1]!, 2], `block ${i} norm stats`) }, c.eps);
        return { out, normed: true };
      }
      b.add(copyValues(b.gpu, { a: x, out, label: `block ${i} output` }));
      return { out, normed: false };
    },

    async embed(b, image) {
      const nP = H0 * W0;
      const C0 = c.embedDim;
      const cols = b.tensor([B, nP, c.inChannels * P * P], 'cols');
      const patches = b.tensor([B, nP, C0], 'patches');
      const out = b.tensor([B, nP, C0], 'embedded');
      const stats = b.tensor([B * nP, 2], 'patch norm stats');
      b.add(patchEmbed(b.gpu, { image, weight: b.param('patch_embed.proj.weight'), bias: b.param('patch_embed.proj.bias'), cols, out: patches }));
      layerNormForward(b, 'patch_embed.norm', { x: patches, y: out, stats }, c.eps);
      return {
        out,
        backward(bb, dout) {
          const dpatches = bb.tensor([B, nP, C0], 'd patches');
          layerNormBackward(bb, 'patch_embed.norm', { x: patches, stats, dy: dout, dx: dpatches }, c.eps);
          bb.add(patchEmbedBackward(bb.gpu, { cols, dout: dpatches, dweight: bb.grad('patch_embed.proj.weight')!, dbias: bb.grad('patch_embed.proj.bias')!, accumulate: true }));
        },
      };
    },

    block(b, i, x, options) {
      const { stage, s, j } = blocks[i]!;
      const name = `layers.${s}.blocks.${j}`;
      const merge = j === 0 && s > 0 ? patchMerging(b, `layers.${s}.downsample`, x, stages[s - 1]!, c.eps) : null;
      const layout = swinWindowLayout(stage.size[0], stage.size[1], stage.window, j % 2 === 1);
      const block = blockForward(b, name, merge?.out ?? x, {
        ...options, mixer: windowAttention(`${name}.attn`, stage.heads, layout), norm: 'pre', hidden: Math.round(c.mlpRatio * stage.dim), eps: c.eps,
      });
      if (!merge) return block;
      return { ...block, backward: (bb, stream) => merge.backward(bb, block.backward(bb, stream)) };
    },

    neck(b, x) {
      const [, L, C] = x.shape as [number, number, number];
      const normed = b.tensor([B, L, C], 'normed');
      const stats = b.tensor([B * L, 2], 'norm stats');
      const features = b.tensor([B, C], 'features');
      layerNormForward(b, 'norm', { x, y: normed, stats }, c.eps);
      b.add(poolTokens(b.gpu, { x: normed, out: features, start: 0, end: L, label: 'pool' }));
      return {
        normed, features: [features],
        backward(bb, dfeatures, dx) {
          const dnormed = bb.tensor([B, L, C], 'd normed');
          bb.add(poolTokensBackward(bb.gpu, { dout: dfeatures[0]!, dx: dnormed, start: 0, end: L, label: 'pool backward' }));
          layerNormBackward(bb, 'norm', { x, stats, dy: dnormed, dx }, c.eps);
        },
        normedBackward(bb, dnormed, dx) {
          layerNormBackward(bb, 'norm', { x, stats, dy: dnormed, dx }, c.eps);
        },
      };
    },
  };
}

/**
 * The registered timm architecture that matches (`swin_base_patch4_window12_384`), else Swin-T's:
 * `model_args` carry every field either way, so the name only helps a reader.
 */
function timmArchitecture(c: SwinConfig): string {
  const size = Object.entries(SWIN_SIZES).find(([, a]) => a.embedDim === c.embedDim && a.heads.join() === c.heads.join() && a.depths.join() === c.depths.join())?.[0];
  const name = `swin_${size}_patch${c.patchSize}_window${c.window}_${c.imageSize}`;
  return size && TIMM_SWINS.has(name) ? name : 'swin_tiny_patch4_window7_224';
}

/** Swin architectures timm registers. */
const TIMM_SWINS = new Set([
  'swin_tiny_patch4_window7_224', 'swin_small_patch4_window7_224', 'swin_base_patch4_window7_224', 'swin_base_patch4_window12_224',
  'swin_base_patch4_window12_384', 'swin_large_patch4_window7_224', 'swin_large_patch4_window12_224', 'swin_large_patch4_window12_384',
]);

/**
 * timm's PatchMerging at `name`: x [B, H*W, C] of the previous stage -> each 2x2 group's tokens
 * side by side [B, H/2*W/2, 4C] -> LayerNorm(4C) -> Linear(4C -> 2C, no bias).
 */
function patchMerging(b: PlanBuilder, name: string, x: Tensor, from: SwinStage, eps: number): SegmentPlan {
  const [B, L, C] = x.shape as [number, number, number];
  const [H, W] = from.size;
  const merged = b.tensor([B, L / 4, 4 * C], `${name} merged`);
  const normed = b.tensor([B, L / 4, 4 * C], `${name} normed`);
  const stats = b.tensor([B * (L / 4), 2], `${name} stats`);
  const out = b.tensor([B, L / 4, 2 * C], `${name} out`);
  b.add(patchMerge(b.gpu, { x, out: merged, H, W, label: `${name} merge` }));
  layerNormForward(b, `${name}.norm`, { x: merged, y: normed, stats }, eps);
  linearForward(b, `${name}.reduction`, normed, out, { in: 4 * C, out: 2 * C });
  return {
    out,
    backward(bb, stream) {
      const dnormed = bb.tensor([B, L / 4, 4 * C], `d ${name} normed`);
      const dmerged = bb.tensor([B, L / 4, 4 * C], `d ${name} merged`);
      const dx = bb.tensor([B, L, C], `d ${name} input`);
      linearBackward(bb, `${name}.reduction`, { x: normed, dy: stream, dx: dnormed }, { in: 4 * C, out: 2 * C });
      layerNormBackward(bb, `${name}.norm`, { x: merged, stats, dy: dnormed, dx: dmerged }, eps);
      bb.add(patchMergeBackward(bb.gpu, { dout: dmerged, dx, H, W, label: `${name} merge backward` }));
      return dx;
    },
  };
}
