// A ViT / DeiT checkpoint's names (timm's, and Hugging Face ViTForImageClassification /
// DeiTForImageClassification(WithTeacher) mapped onto them), and its config read off the weights.
import type { Shapes } from '../../graph/model';
import type { KeyMap } from '../../weights/keys';
import { IMAGENET } from '../common';
import { validateConfig, type ViTConfig } from './config';

export const VIT_KEYS: KeyMap = {
  timm: [
    /^(cls_token|dist_token|pos_embed)$/,
    /^patch_embed\.proj\.(weight|bias)$/,
    /^blocks\.\d+\.(norm1|attn\.qkv|attn\.proj|norm2|mlp\.fc1|mlp\.fc2)\.(weight|bias)$/,
    /^(norm|fc_norm|head|head_dist)\.(weight|bias)$/,
  ],
  // Index buffers, and the Hugging Face pooler (pretraining only).
  ignored: /(^|\.)position_ids$|^((vit|deit)\.)?pooler\./,
  huggingface: {
    detect: /^((vit|deit)\.)?(embeddings|encoder)\./,
    prefix: /^(vit|deit)\./,
    rules: [
      [/^embeddings\.cls_token$/, 'cls_token'],
      [/^embeddings\.distillation_token$/, 'dist_token'],
      [/^embeddings\.position_embeddings$/, 'pos_embed'],
      [/^embeddings\.patch_embeddings\.projection\.(weight|bias)$/, 'patch_embed.proj.$1'],
      [/^encoder\.layer\.(\d+)\.layernorm_before\.(weight|bias)$/, 'blocks.$1.norm1.$2'],
      [/^encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)$/, 'blocks.$1.attn.proj.$2'],
      [/^encoder\.layer\.(\d+)\.layernorm_after\.(weight|bias)$/, 'blocks.$1.norm2.$2'],
      [/^encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)$/, 'blocks.$1.mlp.fc1.$2'],
      [/^encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)$/, 'blocks.$1.mlp.fc2.$2'],
      [/^layernorm\.(weight|bias)$/, 'norm.$1'],
      // DeiT with a teacher has two heads, averaged at inference, like timm's head and head_dist.
      [/^(classifier|cls_classifier)\.(weight|bias)$/, 'head.$2'],
      [/^distillation_classifier\.(weight|bias)$/, 'head_dist.$1'],
    ],
    qkv: { pattern: /^encoder\.layer\.(\d+)\.attention\.attention\.(?<part>query|key|value)\.(weight|bias)$/, target: 'blocks.$1.attn.qkv.$3' },
  },
};

/** Heads by width for the standard ViT sizes; heads cannot be read off the weights. */
const HEADS_BY_DIM: Record<number, number> = { 192: 3, 384: 6, 768: 12, 1024: 16, 1280: 16 };

/**
 * A full config from timm-named weights and what a checkpoint's JSON config said (`partial`).
 * The weights fix the architecture (widths, depth, patch, resolution, tokens, classes); the
 * partial config supplies what weights cannot show (heads, eps, preprocessing, labels), and
 * where it states something the weights also show, the two must agree.
 */
export function inferConfig(weights: Shapes, partial: Partial<ViTConfig> = {}): ViTConfig {
  const shape = (n: string) => weights.get(n)?.shape;
  const required = ['patch_embed.proj.weight', 'pos_embed', 'blocks.0.mlp.fc1.weight', 'head.weight'];
  const missing = required.filter((n) => !weights.has(n));
  if (missing.length) throw new Error(`checkpoint: not a ViT checkpoint this engine knows (missing ${missing.join(', ')})`);
  const patch = shape('patch_embed.proj.weight')!;
  const pos = shape('pos_embed')!;
  const fc1 = shape('blocks.0.mlp.fc1.weight')!;
  const head = shape('head.weight')!;
  if (patch.length !== 4 || patch[2] !== patch[3]) throw new Error(`checkpoint: patch_embed.proj.weight [${patch.join(', ')}] is not [dim, channels, P, P]`);
  if (pos.length !== 3) throw new Error(`checkpoint: pos_embed [${pos.join(', ')}] is not [1, tokens, dim]`);

  const dim = patch[0]!;
  const patchSize = patch[2]!;
  // Depth from the highest block index, so a missing middle block is reported by checkWeights.
  let depth = 0;
  for (const n of weights.keys()) {
    const m = /^blocks\.(\d+)\./.exec(n);
    if (m) depth = Math.max(depth, Number(m[1]) + 1);
  }
  const tokens = weights.has('dist_token') ? 'cls+dist' : weights.has('cls_token') ? 'cls' : 'none';
  const patches = pos[1]! - (tokens === 'cls+dist' ? 2 : tokens === 'cls' ? 1 : 0);
  const grid = Math.round(Math.sqrt(patches));
  if (grid * grid !== patches) throw new Error(`checkpoint: pos_embed has ${patches} patch positions, not a square grid`);

  const fromWeights = {
    imageSize: grid * patchSize,
    patchSize,
    inChannels: patch[1]!,
    dim,
    depth,
    mlpDim: fc1[0]!,
    qkvBias: weights.has('blocks.0.attn.qkv.bias'),
    tokens,
    numClasses: head[0]!,
    // timm: avg pooling is followed by fc_norm; without fc_norm the config decides (checkWeights then checks).
    ...(weights.has('fc_norm.weight') && { globalPool: 'avg' as const }),
  } satisfies Partial<ViTConfig>;
  const disagree = Object.entries(fromWeights).filter(([k, v]) => {
    const said = partial[k as keyof ViTConfig];
    return said !== undefined && said !== v;
  });
  if (disagree.length) {
    const what = disagree.map(([k, v]) => `${k} ${JSON.stringify(partial[k as keyof ViTConfig])} (weights: ${JSON.stringify(v)})`);
    throw new Error(`config: disagrees with the weights: ${what.join(', ')}`);
  }

  const heads = partial.heads ?? HEADS_BY_DIM[dim];
  if (heads === undefined) throw new Error(`config: the number of heads is not given and width ${dim} is not a standard ViT width (${Object.keys(HEADS_BY_DIM).join(', ')})`);
  const channels = fromWeights.inChannels;
  const config: ViTConfig = {
    eps: 1e-6, // timm's ViT LayerNorm
    globalPool: 'token',
    norm: 'pre',
    mean: channels === 3 ? IMAGENET.mean : new Array<number>(channels).fill(0.5),
    std: channels === 3 ? IMAGENET.std : new Array<number>(channels).fill(0.5),
    cropPct: 0.875, // timm's default
    // Fields given as undefined do not override the defaults.
    ...Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)),
    ...fromWeights,
    heads,
  };
  validateConfig(config);
  return config;
}
