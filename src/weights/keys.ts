// Checkpoint key names, mapped in one place to timm's (our canonical names). timm checkpoints
// pass through after a check that every key is one we know; Hugging Face ViT / DeiT checkpoints
// are renamed, with the separate query, key and value projections concatenated into timm's qkv
// (q, k, v along the output dimension, which is how timm splits it again). Then the config is
// read off the weights' shapes, and the weights are checked against the config.
import { validateConfig, type ViTConfig } from '../models/config';
import { checkWeights, type Shapes } from '../models/params';
import type { SafetensorsFile } from './safetensors';

// The one list of expected shapes lives in models/params.ts (training and export follow it too).
export { checkWeights };

export type TimmWeights = Map<string, { shape: number[]; data: Float32Array }>;
/** A parsed safetensors file, or tensors already in memory (by checkpoint name). */
export type TensorSource = SafetensorsFile | ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>;
export type Layout = 'timm' | 'huggingface';

/** Every timm name a ViT / DeiT of ours can have. */
const TIMM = [
  /^(cls_token|dist_token|pos_embed)$/,
  /^patch_embed\.proj\.(weight|bias)$/,
  /^blocks\.\d+\.(norm1|attn\.qkv|attn\.proj|norm2|mlp\.fc1|mlp\.fc2)\.(weight|bias)$/,
  /^(norm|fc_norm|head|head_dist)\.(weight|bias)$/,
];

/** Hugging Face name, after its optional `vit.` / `deit.` prefix, to the timm name. */
const HF: [RegExp, string][] = [
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
];
const HF_QKV = /^encoder\.layer\.(\d+)\.attention\.attention\.(query|key|value)\.(weight|bias)$/;
const HF_PREFIX = /^(vit|deit)\./;

/** Keys that hold no weights of ours: index buffers, and the HF pooler (pretraining only). */
const IGNORED = /(^|\.)position_ids$|^((vit|deit)\.)?pooler\./;

/** Heads by width for the standard ViT sizes; heads cannot be read off the weights. */
const HEADS_BY_DIM: Record<number, number> = { 192: 3, 384: 6, 768: 12, 1024: 16, 1280: 16 };

export function detectLayout(names: readonly string[]): Layout {
  return names.some((n) => /^((vit|deit)\.)?(embeddings|encoder)\./.test(n)) ? 'huggingface' : 'timm';
}

const isFile = (s: TensorSource): s is SafetensorsFile => typeof (s as SafetensorsFile).names === 'function';

function listSome(names: string[]): string {
  return `${names.slice(0, 5).join(', ')}${names.length > 5 ? ` and ${names.length - 5} more` : ''}`;
}

/**
 * All of a checkpoint's tensors under timm names, as float32. Throws, naming them, on keys it
 * cannot map (rather than dropping weights), on two keys mapping to one name, and on an
 * incomplete or inconsistent query / key / value triple.
 */
export function toTimmNames(source: TensorSource): TimmWeights {
  const file = isFile(source) ? source : undefined;
  const all = file ? file.names() : [...(source as Exclude<TensorSource, SafetensorsFile>).keys()];
  // Tensors are read (and F16 / BF16 converted) only once every name has mapped.
  const read = (n: string) => {
    if (file) return { shape: [...file.entries.get(n)!.shape], data: file.get(n) };
    const t = (source as Exclude<TensorSource, SafetensorsFile>).get(n)!;
    return { shape: [...t.shape], data: t.data };
  };
  const names = all.filter((n) => !IGNORED.test(n));
  const layout = detectLayout(names);

  // First only names: an unmappable checkpoint fails before any tensor is converted.
  const renamed = new Map<string, string>(); // timm name -> checkpoint name
  const qkv = new Map<string, Partial<Record<'query' | 'key' | 'value', string>>>();
  const unknown: string[] = [];
  const claim = (timm: string, from: string) => {
    const other = renamed.get(timm);
    if (other !== undefined) throw new Error(`checkpoint: ${other} and ${from} both map to ${timm}`);
    renamed.set(timm, from);
  };
  for (const n of names) {
    if (layout === 'timm') {
      if (TIMM.some((re) => re.test(n))) claim(n, n);
      else unknown.push(n);
      continue;
    }
    const rest = n.replace(HF_PREFIX, '');
    const split = HF_QKV.exec(rest);
    if (split) {
      const [, block, part, kind] = split as unknown as [string, string, 'query' | 'key' | 'value', string];
      const target = `blocks.${block}.attn.qkv.${kind}`;
      const parts = qkv.get(target) ?? {};
      if (parts[part] !== undefined) throw new Error(`checkpoint: ${parts[part]} and ${n} both map to the ${part} of ${target}`);
      qkv.set(target, { ...parts, [part]: n });
      continue;
    }
    const rule = HF.find(([re]) => re.test(rest));
    if (rule) claim(rest.replace(rule[0], rule[1]), n);
    else unknown.push(n);
  }
  if (unknown.length) throw new Error(`checkpoint: ${unknown.length} ${layout} key(s) with no timm equivalent: ${listSome(unknown)}`);

  const out: TimmWeights = new Map();
  for (const [timm, from] of renamed) out.set(timm, read(from));
  for (const [target, parts] of qkv) {
    const missing = (['query', 'key', 'value'] as const).filter((p) => parts[p] === undefined);
    if (missing.length) throw new Error(`checkpoint: ${target} needs query, key and value; missing ${missing.join(', ')}`);
    const [q, k, v] = [parts.query!, parts.key!, parts.value!].map(read) as [ReturnType<typeof read>, ReturnType<typeof read>, ReturnType<typeof read>];
    if (k.shape.join() !== q.shape.join() || v.shape.join() !== q.shape.join()) {
      throw new Error(`checkpoint: query, key and value of ${target} differ in shape ([${q.shape}], [${k.shape}], [${v.shape}])`);
    }
    // Row-major [D, D] (or [D] for the bias) stacked along the first axis: plain concatenation.
    const data = new Float32Array(3 * q.data.length);
    data.set(q.data, 0);
    data.set(k.data, q.data.length);
    data.set(v.data, 2 * q.data.length);
    out.set(target, { shape: [3 * (q.shape[0] ?? 0), ...q.shape.slice(1)], data });
  }
  return out;
}

const IMAGENET = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

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
