// The ViT family (timm's VisionTransformer): patch embedding, prefix tokens and a learned position
// embedding, pre- or post-norm blocks of global self-attention, then the final norm and pooling.
// Legend: B batch, C channels, S image side, P patch, nP patches, nTok prefix tokens,
// T = nTok + nP, D width, H heads, M MLP width, K classes. DeiT's distillation token and head are
// a second prefix token with a head of its own (config `tokens: 'cls+dist'`): every classifier
// head reads its own prefix token with token pooling, so DeiT needs no code of its own.
import { readTensor, writeTensor, type Tensor } from '../../gpu/tensor';
import type { FamilyPlanner, ModelFamily, NeckPlan } from '../../graph/family';
import { selfAttention } from '../../graph/layers/attention';
import { blockForward } from '../../graph/layers/block';
import { layerNormBackward, layerNormForward } from '../../graph/layers/layerNorm';
import { allShapes, groupNames, type GroupedShapes, type ParamShapes } from '../../graph/model';
import type { PlanBuilder } from '../../graph/plan';
import { patchEmbed, patchEmbedBackward } from '../../kernels/patchEmbed';
import { embedTokens, embedTokensBackward, poolTokens, poolTokensBackward } from '../../kernels/tokens';
import { isNormParam } from '../common';
import { prefixTokens, validateConfig, type ViTConfig } from './config';
import { resizePosEmbed } from './posEmbed';

/** The prefix tokens' parameters, in token order. */
function tokenNames(c: ViTConfig): string[] {
  return c.tokens === 'cls+dist' ? ['cls_token', 'dist_token'] : c.tokens === 'cls' ? ['cls_token'] : [];
}

/** One classifier head per prefix token with token pooling (`head`, DeiT's `head_dist`); one head on the pooled patches otherwise. */
function heads(c: ViTConfig): string[] {
  return c.tokens === 'cls+dist' ? ['head', 'head_dist'] : ['head'];
}

/** timm: a final norm over all tokens for pre-norm token pooling; with avg pooling the final norm is an Identity and fc_norm follows the pool. Post-norm blocks end normalised already. */
function finalNorm(c: ViTConfig): 'norm' | 'fc_norm' | null {
  return c.norm === 'post' ? null : c.globalPool === 'avg' ? 'fc_norm' : 'norm';
}

function blockNames(c: ViTConfig, i: number): ParamShapes {
  const D = c.dim;
  const b = `blocks.${i}`;
  return [
    [`${b}.norm1.weight`, [D]], [`${b}.norm1.bias`, [D]],
    [`${b}.attn.qkv.weight`, [3 * D, D]],
    ...(c.qkvBias ? [[`${b}.attn.qkv.bias`, [3 * D]] as [string, number[]]] : []),
    [`${b}.attn.proj.weight`, [D, D]], [`${b}.attn.proj.bias`, [D]],
    [`${b}.norm2.weight`, [D]], [`${b}.norm2.bias`, [D]],
    [`${b}.mlp.fc1.weight`, [c.mlpDim, D]], [`${b}.mlp.fc1.bias`, [c.mlpDim]],
    [`${b}.mlp.fc2.weight`, [D, c.mlpDim]], [`${b}.mlp.fc2.bias`, [D]],
  ];
}

function groupShapes(c: ViTConfig): GroupedShapes {
  const D = c.dim;
  const grid = c.imageSize / c.patchSize;
  const norm = finalNorm(c);
  return {
    stem: [
      ...tokenNames(c).map((n): [string, number[]] => [n, [1, 1, D]]),
      ['pos_embed', [1, prefixTokens(c) + grid * grid, D]],
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
  validate: validateConfig,
  parameterShapes: (c) => allShapes(groupShapes(c)),
  parameterGroups: (c) => groupNames(groupShapes(c)),
  /** Norms, biases, the position embedding and the tokens. */
  isNoDecay(name) {
    return name.endsWith('.bias') || isNormParam(name) || name === 'pos_embed' || name.endsWith('_token');
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

function vitPlanner(c: ViTConfig, B: number, S: number): FamilyPlanner {
  if (!Number.isInteger(S) || S <= 0 || S % c.patchSize !== 0) {
    throw new Error(`forward: image size ${S} is not a positive multiple of the patch size ${c.patchSize}`);
  }
  const P = c.patchSize;
  const grid = S / P;
  const nP = grid * grid;
  const nTok = prefixTokens(c);
  const T = nTok + nP;
  const D = c.dim;
  return {
    depth: c.depth,
    attention: { prefixTokens: nTok, grid: [grid, grid], patch: P, windowed: false },
    blockInput: () => [B, T, D],
    blockAttention: () => ({ grid: [grid, grid], window: [grid, grid], shift: [0, 0] }),

    async embed(b, image) {
      const cols = b.tensor([B, nP, c.inChannels * P * P], 'cols');
      const patches = b.tensor([B, nP, D], 'patches');
      const out = b.tensor([B, T, D], 'embedded');
      let pos = b.param('pos_embed');
      if (S !== c.imageSize) {
        const from = c.imageSize / P;
        const resized = resizePosEmbed(await readTensor(b.gpu, pos), nTok, D, [from, from], [grid, grid]);
        pos = b.tensor([T, D], 'pos_embed resized');
        writeTensor(b.gpu, pos, resized);
      }
      const [cls, dist] = tokenNames(c).map((n) => b.param(n));
      b.add(patchEmbed(b.gpu, { image, weight: b.param('patch_embed.proj.weight'), bias: b.param('patch_embed.proj.bias'), cols, out: patches }));
      b.add(embedTokens(b.gpu, { patches, pos, cls, dist, out }));
      return {
        out,
        backward(bb, dout) {
          const dpatches = bb.tensor([B, nP, D], 'd patches');
          const [dcls, ddist] = tokenNames(c).map((n) => bb.grad(n));
          bb.add(embedTokensBackward(bb.gpu, { dout, dpatches, dcls, ddist, dpos: bb.grad('pos_embed')!, accumulate: true, label: 'embed backward' }));
          bb.add(patchEmbedBackward(bb.gpu, { cols, dout: dpatches, dweight: bb.grad('patch_embed.proj.weight')!, dbias: bb.grad('patch_embed.proj.bias')!, accumulate: true }));
        },
      };
    },

    block: (b, i, x, options) => blockForward(b, `blocks.${i}`, x, { ...options, mixer: selfAttention(`blocks.${i}.attn`, c.heads), norm: c.norm, hidden: c.mlpDim, eps: c.eps }),

    neck: (b, x) => (c.globalPool === 'avg' ? avgPoolNeck(b, c, x, nTok) : tokenPoolNeck(b, c, x)),
  };
}

/** Each head reads its prefix token, after the final norm (pre-norm). */
function tokenPoolNeck(b: PlanBuilder, c: ViTConfig, x: Tensor): NeckPlan {
  const [B, T, D] = x.shape as [number, number, number];
  const norm = finalNorm(c);
  const stats = norm ? b.tensor([B * T, 2], 'norm stats') : undefined;
  const normed = norm ? b.tensor([B, T, D], 'normed') : x;
  if (norm) layerNormForward(b, norm, { x, y: normed, stats: stats! }, c.eps);
  const features = heads(c).map((h, i) => {
    const f = b.tensor([B, D], `${h} features`);
    b.add(poolTokens(b.gpu, { x: normed, out: f, start: i, end: i + 1, label: `${h} pool` }));
    return f;
  });
  return {
    normed, features,
    backward(bb, dfeatures, dx) {
      const dnormed = norm ? bb.tensor([B, T, D], 'd normed') : dx;
      heads(c).forEach((h, i) => bb.add(poolTokensBackward(bb.gpu, { dout: dfeatures[i]!, dx: dnormed, start: i, end: i + 1, accumulate: i > 0, label: `${h} pool backward` })));
      if (norm) layerNormBackward(bb, norm, { x, stats: stats!, dy: dnormed, dx }, c.eps);
    },
  };
}

/** The mean of the patch tokens, then fc_norm (pre-norm). */
function avgPoolNeck(b: PlanBuilder, c: ViTConfig, x: Tensor, nTok: number): NeckPlan {
  const [B, T, D] = x.shape as [number, number, number];
  const norm = finalNorm(c);
  const pooled = b.tensor([B, D], 'pooled');
  const stats = norm ? b.tensor([B, 2], 'fc_norm stats') : undefined;
  const features = norm ? b.tensor([B, D], 'features') : pooled;
  b.add(poolTokens(b.gpu, { x, out: pooled, start: nTok, end: T, label: 'pool' }));
  if (norm) layerNormForward(b, norm, { x: pooled, y: features, stats: stats! }, c.eps);
  return {
    normed: x, features: [features],
    backward(bb, dfeatures, dx) {
      let dpooled = dfeatures[0]!;
      if (norm) {
        dpooled = bb.tensor([B, D], 'd pooled');
        layerNormBackward(bb, norm, { x: pooled, stats: stats!, dy: dfeatures[0]!, dx: dpooled }, c.eps);
      }
      bb.add(poolTokensBackward(bb.gpu, { dout: dpooled, dx, start: nTok, end: T, label: 'pool backward' }));
    },
  };
}
