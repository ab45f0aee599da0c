// A checkpoint's JSON config, in any of three dialects, merged with what the weights themselves
// show. Ours uses ViTConfig's own field names; timm's pretrained_cfg / model_args use embed_dim,
// num_heads, ...; Hugging Face's config.json uses hidden_size, num_attention_heads, ... .
// What the weights fix (widths, depth, patch, token layout, classes) is read from the weights;
// the config supplies what they cannot show (heads, eps, preprocessing, labels).
import type { ViTConfig } from '../models/config';
import type { Shapes } from '../models/params';

/** Heads by width for standard ViTs, when a config does not say. */
const HEADS_BY_DIM: Record<number, number> = { 192: 3, 384: 6, 768: 12, 1024: 16, 1280: 16 };
const IMAGENET = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

type Json = Record<string, unknown>;

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const nums = (v: unknown): number[] | undefined => (Array.isArray(v) && v.every((x) => typeof x === 'number') ? (v as number[]) : undefined);

function labelsOf(j: Json): string[] | undefined {
  if (Array.isArray(j.labels)) return j.labels.map(String);
  if (Array.isArray(j.label_names)) return j.label_names.map(String);
  if (j.id2label && typeof j.id2label === 'object') {
    const m = j.id2label as Record<string, unknown>;
    return Object.keys(m).sort((a, b) => Number(a) - Number(b)).map((k) => String(m[k]));
  }
  return undefined;
}

export function parseConfig(json: unknown, weights: Shapes): ViTConfig {
  if (typeof json === 'string') json = JSON.parse(json);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('config: expected a JSON object');
  const j = { ...(json as Json), ...((json as Json).model_args as Json | undefined) };
  if (j.hidden_act !== undefined && j.hidden_act !== 'gelu') throw new Error(`config: hidden_act ${JSON.stringify(j.hidden_act)} is not supported (only exact GELU)`);
  if (j.no_embed_class === true) throw new Error('config: no_embed_class models (position embedding without the class token) are not supported');

  const shape = (name: string) => weights.get(name)?.shape;
  const patch = shape('patch_embed.proj.weight');
  const pos = shape('pos_embed');
  const fc1 = shape('blocks.0.mlp.fc1.weight');
  const head = shape('head.weight');
  if (!patch || !pos || !fc1 || !head) {
    const missing = ['patch_embed.proj.weight', 'pos_embed', 'blocks.0.mlp.fc1.weight', 'head.weight'].filter((n) => !weights.has(n));
    throw new Error(`checkpoint: not a ViT checkpoint this engine knows (missing ${missing.join(', ')})`);
  }
  const dim = patch[0]!;
  const patchSize = patch[2]!;
  let depth = 0;
  while (weights.has(`blocks.${depth}.norm1.weight`)) depth++;
  const tokens = weights.has('dist_token') ? 'cls+dist' : weights.has('cls_token') ? 'cls' : 'none';
  const nTok = tokens === 'cls+dist' ? 2 : tokens === 'cls' ? 1 : 0;
  const grid = Math.round(Math.sqrt(pos[1]! - nTok));
  const heads = num(j.heads) ?? num(j.num_heads) ?? num(j.num_attention_heads) ?? HEADS_BY_DIM[dim];
  if (heads === undefined) throw new Error(`config: the number of heads is not given and width ${dim} is not a standard ViT width`);
  const inputSize = nums(j.input_size);
  const labels = labelsOf(j);
  const norm = j.norm === 'post' || j.post_norm === true ? 'post' : 'pre';
  const config: ViTConfig = {
    imageSize: grid * patchSize,
    patchSize,
    inChannels: patch[1]!,
    dim,
    depth,
    heads,
    mlpDim: fc1[0]!,
    qkvBias: weights.has('blocks.0.attn.qkv.bias'),
    eps: num(j.eps) ?? num(j.layer_norm_eps) ?? 1e-6,
    tokens,
    globalPool: weights.has('fc_norm.weight') || j.globalPool === 'avg' || j.global_pool === 'avg' ? 'avg' : 'token',
    norm,
    numClasses: head[0]!,
    mean: nums(j.mean) ?? nums(j.image_mean) ?? IMAGENET.mean.slice(0, patch[1]!),
    std: nums(j.std) ?? nums(j.image_std) ?? IMAGENET.std.slice(0, patch[1]!),
    cropPct: num(j.cropPct) ?? num(j.crop_pct) ?? 0.875,
    ...(labels && { labels }),
  };
  const declared = num(j.imageSize) ?? num(j.image_size) ?? num(j.img_size) ?? (inputSize ? inputSize[inputSize.length - 1] : undefined);
  if (declared !== undefined && declared !== config.imageSize) {
    throw new Error(`config: image size ${declared} disagrees with the position embedding, which is for ${config.imageSize} (${grid}x${grid} patches of ${patchSize})`);
  }
  const declaredDim = num(j.dim) ?? num(j.embed_dim) ?? num(j.hidden_size);
  if (declaredDim !== undefined && declaredDim !== dim) throw new Error(`config: width ${declaredDim} disagrees with the weights (${dim})`);
  return config;
}
