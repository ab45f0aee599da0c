// The ViT family (timm's VisionTransformer): patch embedding, prefix tokens and a learned position
// embedding, pre- or post-norm blocks of global self-attention, then the final norm and pooling.
// Legend: B batch, C channels, S image side (or H x W), P patch, nP patches, nTok prefix tokens
// (class, distillation, R registers), T = nTok + nP, D width, H heads, M MLP width, K classes.
// DeiT's distillation token and head are a second prefix token with a head of its own (config
// `tokens: 'cls+dist'`): every classifier head reads its own prefix token with token pooling, so
// DeiT needs no code of its own. timm's options: LayerScale (`ls1`, `ls2`, a block option),
// register tokens after the class token (never pooled, left out of the attention maps), a position
// embedding over the patches only (no_embed_class), and the final norm over the tokens, after the
// pool (fc_norm) or none; numClasses 0 is a backbone.
import { readTensor, writeTensor, type Tensor } from '../../gpu/tensor';
import type { FamilyPlanner, ImageSize, ModelFamily, NeckPlan } from '../../graph/family';
import { selfAttention } from '../../graph/layers/attention';
import { blockForward } from '../../graph/layers/block';
import { layerNormBackward, layerNormForward } from '../../graph/layers/layerNorm';
import { allShapes, groupNames, type GroupedShapes, type ParamShapes } from '../../graph/model';
import type { PlanBuilder } from '../../graph/plan';
import { patchEmbed, patchEmbedBackward } from '../../kernels/patchEmbed';
import { add, copyValues, embedTokens, embedTokensBackward, poolTokens, poolTokensBackward } from '../../kernels/tokens';
import { isNormParam } from '../common';
import { posEmbedPrefix, prefixTokens, validateConfig, type ViTConfig } from './config';
import { resizePosEmbed } from './posEmbed';

/** The class and distillation tokens' parameters ([1, 1, D] each), in token order; register tokens follow them. */
function tokenNames(c: ViTConfig): string[] {
  return c.tokens === 'cls+dist' ? ['cls_token', 'dist_token'] : c.tokens === 'cls' ? ['cls_token'] : [];
}

/**
 * One classifier head per pooled token with token pooling (`head`, DeiT's `head_dist`); one head
 * on the pooled patches otherwise; none for a backbone (numClasses 0).
 */
function heads(c: ViTConfig): string[] {
  if (c.numClasses === 0) return [];
  return c.tokens === 'cls+dist' ? ['head', 'head_dist'] : ['head'];
}

/** The tokens each feature vector pools: each head's own token, or the patches' mean. */
function pooledTokens(c: ViTConfig): number {
  return c.tokens === 'cls+dist' ? 2 : 1;
}

/**
 * timm: the final norm sits over all tokens (`norm`) or after the pool (`fc_norm`, by default with
 * avg pooling); final_norm=False drops it. Post-norm blocks end normalised already.
 */
function finalNorm(c: ViTConfig): 'norm' | 'fc_norm' | null {
  if (c.norm === 'post' || c.finalNorm === false) return null;
  return (c.fcNorm ?? c.globalPool === 'avg') ? 'fc_norm' : 'norm';
}

function blockNames(c: ViTConfig, i: number): ParamShapes {
  const D = c.dim;
  const b = `blocks.${i}`;
  return [
    [`${b}.norm1.weight`, [D]], [`${b}.norm1.bias`, [D]],
    [`${b}.attn.qkv.weight`, [3 * D, D]],
    ...(c.qkvBias ? [[`${b}.attn.qkv.bias`, [3 * D]] as [string, number[]]] : []),
    [`${b}.attn.proj.weight`, [D, D]], [`${b}.attn.proj.bias`, [D]],
    ...(c.layerScale !== undefined ? [[`${b}.ls1.gamma`, [D]] as [string, number[]]] : []),
    [`${b}.norm2.weight`, [D]], [`${b}.norm2.bias`, [D]],
    [`${b}.mlp.fc1.weight`, [c.mlpDim, D]], [`${b}.mlp.fc1.bias`, [c.mlpDim]],
    [`${b}.mlp.fc2.weight`, [D, c.mlpDim]], [`${b}.mlp.fc2.bias`, [D]],
    ...(c.layerScale !== undefined ? [[`${b}.ls2.gamma`, [D]] as [string, number[]]] : []),
  ];
}

function groupShapes(c: ViTConfig): GroupedShapes {
  const D = c.dim;
  const grid = c.imageSize / c.patchSize;
  const norm = finalNorm(c);
  return {
    stem: [
      ...tokenNames(c).map((n): [string, number[]] => [n, [1, 1, D]]),
      ...(c.regTokens ? [['reg_token', [1, c.regTokens, D]] as [string, number[]]] : []),
      ['pos_embed', [1, posEmbedPrefix(c) + grid * grid, D]],
      ['patch_embed.proj.weight', [D, c.inChannels, c.patchSize, c.patchSize]],
      ['patch_embed.proj.bias', [D]],
    ],
    blocks: Array.from({ length: c.depth }, (_, i) => blockNames(c, i)),
    neck: norm ? [[`${norm}.weight`, [D]], [`${norm}.bias`, [D]]] : [],
    classifier: heads(c).flatMap((h): ParamShapes => [[`${h}.weight`, [c.numClasses, D]], [`${h}.bias`, [c.numClasses]]]),
  };
}

export const vit: ModelFamily<ViTConfig> = {
  name: 'vit',
  nonSquare: true,
  validate: validateConfig,
  parameterShapes: (c) => allShapes(groupShapes(c)),
  parameterGroups: (c) => groupNames(groupShapes(c)),
  /** Norms, biases, LayerScale's gammas, the position embedding and the tokens (timm: every 1-D tensor and the embeddings). */
  isNoDecay(name) {
    return name.endsWith('.bias') || isNormParam(name) || name.endsWith('.gamma') || name === 'pos_embed' || name.endsWith('_token');
  },
  blockHeads: (c) => new Array<number>(c.depth).fill(c.heads),
  classifierHeads: heads,
  timmModel(c) {
    // timm's VisionTransformer has no post-norm blocks.
    if (c.norm === 'post') return undefined;
    return {
      architecture: c.tokens === 'cls+dist' ? 'deit_base_distilled_patch16_224' : 'vit_base_patch16_224',
      model_args: {
        img_size: c.imageSize, patch_size: c.patchSize, in_chans: c.inChannels, embed_dim: c.dim, depth: c.depth, num_heads: c.heads,
        mlp_ratio: c.mlpDim / c.dim, qkv_bias: c.qkvBias, class_token: c.tokens !== 'none', global_pool: c.globalPool,
        fc_norm: c.globalPool === 'avg', num_classes: c.numClasses,
      },
    };
  },
  planner: vitPlanner,
};

function vitPlanner(c: ViTConfig, B: number, size: ImageSize): FamilyPlanner {
  const [H, W] = typeof size === 'number' ? [size, size] : size;
  for (const S of [H, W]) {
    if (!Number.isInteger(S) || S <= 0 || S % c.patchSize !== 0) {
      throw new Error(`forward: image size ${S} is not a positive multiple of the patch size ${c.patchSize}`);
    }
  }
  const P = c.patchSize;
  const grid: [number, number] = [H / P, W / P];
  const nP = grid[0] * grid[1];
  const nTok = prefixTokens(c);
  const posFrom = nTok - posEmbedPrefix(c);
  const R = c.regTokens ?? 0;
  const T = nTok + nP;
  const D = c.dim;
  return {
    depth: c.depth,
    attention: { prefixTokens: nTok, grid, patch: P, windowed: false },
    blockInput: () => [B, T, D],
    blockAttention: () => ({ grid, window: grid, shift: [0, 0] }),
    blockTokens: () => ({ classTokens: nTok - R, registers: R, grid, dim: D }),

    intermediate(b, i, x, norm) {
      const out = b.tensor([B, T, D], `block ${i} output`);
      // timm normalises intermediates with `norm` only: an fc_norm acts after the pool, on no token.
      if (norm && finalNorm(c) === 'norm') {
        layerNormForward(b, 'norm', { x, y: out, stats: b.tensor([B * T, 2], `block ${i} norm stats`) }, c.eps);
        return { out, normed: true };
      }
      b.add(copyValues(b.gpu, { a: x, out, label: `block ${i} output` }));
      return { out, normed: false };
    },

    async embed(b, image) {
      const cols = b.tensor([B, nP, c.inChannels * P * P], 'cols');
      const patches = b.tensor([B, nP, D], 'patches');
      const out = b.tensor([B, T, D], 'embedded');
      let pos = b.param('pos_embed');
      if (H !== c.imageSize || W !== c.imageSize) {
        const from = c.imageSize / P;
        // As timm resamples for another size (resample_abs_pos_embed: bicubic, antialiased).
        const resized = resizePosEmbed(await readTensor(b.gpu, pos), nTok - posFrom, D, [from, from], grid, { antialias: true });
        pos = b.tensor([T - posFrom, D], 'pos_embed resized');
        writeTensor(b.gpu, pos, resized);
      }
      const [cls, dist] = tokenNames(c).map((n) => b.param(n));
      const reg = R ? b.param('reg_token') : undefined;
      b.add(patchEmbed(b.gpu, { image, weight: b.param('patch_embed.proj.weight'), bias: b.param('patch_embed.proj.bias'), cols, out: patches }));
      b.add(embedTokens(b.gpu, { patches, pos, cls, dist, reg, posFrom, out }));
      return {
        out,
        backward(bb, dout) {
          const dpatches = bb.tensor([B, nP, D], 'd patches');
          const [dcls, ddist] = tokenNames(c).map((n) => bb.grad(n));
          const dreg = R ? bb.grad('reg_token') : undefined;
          bb.add(embedTokensBackward(bb.gpu, { dout, dpatches, dcls, ddist, dreg, regTokens: R, posFrom, dpos: bb.grad('pos_embed')!, accumulate: true, label: 'embed backward' }));
          bb.add(patchEmbedBackward(bb.gpu, { cols, dout: dpatches, dweight: bb.grad('patch_embed.proj.weight')!, dbias: bb.grad('patch_embed.proj.bias')!, accumulate: true }));
        },
      };
    },

    block: (b, i, x, options) => blockForward(b, `blocks.${i}`, x, {
      ...options, mixer: selfAttention(`blocks.${i}.attn`, c.heads), norm: c.norm, hidden: c.mlpDim, eps: c.eps, layerScale: c.layerScale !== undefined,
    }),

    neck: (b, x) => vitNeck(b, c, x, nTok),
  };
}

/**
 * timm's forward_features tail and pooling: the final norm over every token (`norm`), then each
 * feature vector pools its token (token pooling: the class token, and DeiT's distillation token)
 * or the mean of the patch tokens (avg; prefix tokens, registers included, are skipped), then
 * `fc_norm` after the pool. A backbone without a classifier still gives the first token's features.
 */
function vitNeck(b: PlanBuilder, c: ViTConfig, x: Tensor, nTok: number): NeckPlan {
  const [B, T, D] = x.shape as [number, number, number];
  const norm = finalNorm(c);
  const tokenNorm = norm === 'norm';
  const stats = tokenNorm ? b.tensor([B * T, 2], 'norm stats') : undefined;
  const normed = tokenNorm ? b.tensor([B, T, D], 'normed') : x;
  if (tokenNorm) layerNormForward(b, 'norm', { x, y: normed, stats: stats! }, c.eps);
  const ranges: [number, number][] = c.globalPool === 'avg' ? [[nTok, T]] : Array.from({ length: pooledTokens(c) }, (_, i) => [i, i + 1]);
  const pooled = ranges.map(([start, end], i) => {
    const f = b.tensor([B, D], `pooled ${i}`);
    b.add(poolTokens(b.gpu, { x: normed, out: f, start, end, label: `pool ${i}` }));
    return f;
  });
  const fcStats = norm === 'fc_norm' ? b.tensor([B, 2], 'fc_norm stats') : undefined;
  const features = fcStats ? [b.tensor([B, D], 'features')] : pooled;
  if (fcStats) layerNormForward(b, 'fc_norm', { x: pooled[0]!, y: features[0]!, stats: fcStats }, c.eps);
  return {
    normed, features,
    backward(bb, dfeatures, dx) {
      let dpooled = dfeatures;
      if (fcStats) {
        dpooled = [bb.tensor([B, D], 'd pooled')];
        layerNormBackward(bb, 'fc_norm', { x: pooled[0]!, stats: fcStats, dy: dfeatures[0]!, dx: dpooled[0]! }, c.eps);
      }
      const dnormed = tokenNorm ? bb.tensor([B, T, D], 'd normed') : dx;
      ranges.forEach(([start, end], i) => bb.add(poolTokensBackward(bb.gpu, { dout: dpooled[i]!, dx: dnormed, start, end, accumulate: i > 0, label: `pool ${i} backward` })));
      if (tokenNorm) layerNormBackward(bb, 'norm', { x, stats: stats!, dy: dnormed, dx }, c.eps);
    },
    normedBackward(bb, dnormed, dx) {
      // Without a token norm, normed is the last block's output itself: d(x) = d(normed), copied
      // through the add kernel as (d + d) / 2, which is exact.
      if (tokenNorm) layerNormBackward(bb, 'norm', { x, stats: stats!, dy: dnormed, dx }, c.eps);
      else bb.add(add(bb.gpu, { a: dnormed, b: dnormed, out: dx, alpha: 0.5, label: 'd normed' }));
    },
  };
}
