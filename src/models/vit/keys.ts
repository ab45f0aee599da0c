// A ViT / DeiT checkpoint's names (timm's, and Hugging Face ViTForImageClassification /
// DeiTForImageClassification(WithTeacher) / Dinov2Model mapped onto them), and its config read off
// the weights.
import type { Shapes } from '../../graph/model';
import type { KeyMap, TimmRecipes } from '../../weights/keys';
import { IMAGENET } from '../common';
import { validateConfig, type ViTConfig } from './config';

/**
 * What a checkpoint's JSON config states (weights/config.ts): ViTConfig fields, with layerScale
 * null where the config turns LayerScale off explicitly (timm `init_values: null`).
 */
export type StatedViTConfig = Omit<Partial<ViTConfig>, 'layerScale'> & { layerScale?: number | null };

export const VIT_KEYS: KeyMap = {
  timm: [
    /^(cls_token|dist_token|reg_token|pos_embed)$/,
    /^patch_embed\.proj\.(weight|bias)$/,
    /^blocks\.\d+\.(norm1|attn\.qkv|attn\.proj|norm2|mlp\.fc1|mlp\.fc2)\.(weight|bias)$/,
    /^blocks\.\d+\.ls[12]\.gamma$/,
    /^(norm|fc_norm|head|head_dist)\.(weight|bias)$/,
  ],
  // Index buffers, the Hugging Face pooler (pretraining only) and DINOv2's mask token (masked
  // image modelling in pretraining; never used on images).
  ignored: /(^|\.)position_ids$|^((vit|deit)\.)?pooler\.|^(dinov2(_with_registers)?\.)?embeddings\.mask_token$/,
  huggingface: {
    detect: /^((vit|deit|dinov2|dinov2_with_registers)\.)?(embeddings|encoder)\./,
    prefix: /^(vit|deit|dinov2|dinov2_with_registers)\./,
    rules: [
      [/^embeddings\.cls_token$/, 'cls_token'],
      [/^embeddings\.distillation_token$/, 'dist_token'],
      [/^embeddings\.register_tokens$/, 'reg_token'],
      [/^embeddings\.position_embeddings$/, 'pos_embed'],
      [/^embeddings\.patch_embeddings\.projection\.(weight|bias)$/, 'patch_embed.proj.$1'],
      [/^encoder\.layer\.(\d+)\.layernorm_before\.(weight|bias)$/, 'blocks.$1.norm1.$2'],
      [/^encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)$/, 'blocks.$1.attn.proj.$2'],
      [/^encoder\.layer\.(\d+)\.layernorm_after\.(weight|bias)$/, 'blocks.$1.norm2.$2'],
      [/^encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)$/, 'blocks.$1.mlp.fc1.$2'],
      [/^encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)$/, 'blocks.$1.mlp.fc2.$2'],
      // Dinov2Model (transformers' modeling_dinov2.py): timm-like block names, LayerScale as lambda1.
      [/^encoder\.layer\.(\d+)\.norm([12])\.(weight|bias)$/, 'blocks.$1.norm$2.$3'],
      [/^encoder\.layer\.(\d+)\.mlp\.fc([12])\.(weight|bias)$/, 'blocks.$1.mlp.fc$2.$3'],
      [/^encoder\.layer\.(\d+)\.layer_scale([12])\.lambda1$/, 'blocks.$1.ls$2.gamma'],
      [/^layernorm\.(weight|bias)$/, 'norm.$1'],
      // DeiT with a teacher has two heads, averaged at inference, like timm's head and head_dist.
      [/^(classifier|cls_classifier)\.(weight|bias)$/, 'head.$2'],
      [/^distillation_classifier\.(weight|bias)$/, 'head_dist.$1'],
    ],
    qkv: { pattern: /^encoder\.layer\.(\d+)\.attention\.attention\.(?<part>query|key|value)\.(weight|bias)$/, target: 'blocks.$1.attn.qkv.$3' },
    fold: foldRegisterPositions,
  },
};

/**
 * Hugging Face's Dinov2WithRegisters adds its position embedding to the class token and the
 * patches, then inserts the registers between them, which take none. timm's layout for the same
 * model (vit_*_reg4_dinov2, no_embed_class) has no class row: the class token holds its position
 * (cls + pos[0]) and pos_embed covers the patches, as timm's own checkpoint filter converts it.
 * Exact at any image size, since the class row is never resampled.
 */
function foldRegisterPositions(w: TimmRecipes): void {
  const cls = w.get('cls_token');
  const pos = w.get('pos_embed');
  if (!w.has('reg_token') || !cls || !pos || pos.shape.length !== 3) return;
  const D = cls.shape.reduce((a, b) => a * b, 1);
  const from = [...cls.from, ...pos.from];
  w.set('cls_token', { shape: cls.shape, from, build: (get) => {
    const p = pos.build(get);
    return cls.build(get).map((v, d) => v + p[d]!);
  } });
  w.set('pos_embed', { shape: [1, pos.shape[1]! - 1, D], from: pos.from, build: (get) => pos.build(get).slice(D) });
}

/** Heads by width for the standard ViT sizes; heads cannot be read off the weights. */
const HEADS_BY_DIM: Record<number, number> = { 192: 3, 384: 6, 768: 12, 1024: 16, 1280: 16 };

/**
 * A full config from timm-named weights and what a checkpoint's JSON config said (`partial`).
 * The weights fix the architecture (widths, depth, patch, resolution, tokens, classes); the
 * partial config supplies what weights cannot show (heads, eps, preprocessing, labels), and
 * where it states something the weights also show, the two must agree.
 */
export function inferConfig(weights: Shapes, stated: StatedViTConfig = {}): ViTConfig {
  const shape = (n: string) => weights.get(n)?.shape;
  const { layerScale: statedLayerScale, ...partial } = stated;
  const required = ['patch_embed.proj.weight', 'pos_embed', 'blocks.0.mlp.fc1.weight'];
  const missing = required.filter((n) => !weights.has(n));
  if (missing.length) throw new Error(`checkpoint: not a ViT checkpoint this engine knows (missing ${missing.join(', ')})`);
  const patch = shape('patch_embed.proj.weight')!;
  const pos = shape('pos_embed')!;
  const fc1 = shape('blocks.0.mlp.fc1.weight')!;
  // A backbone (DINOv2) has no head: numClasses 0.
  const head = shape('head.weight');
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
  const reg = shape('reg_token');
  if (reg && (reg.length !== 3 || reg[0] !== 1 || reg[2] !== dim)) throw new Error(`checkpoint: reg_token [${reg.join(', ')}] is not [1, registers, ${dim}]`);
  const regTokens = reg ? reg[1]! : 0;
  const nTok = (tokens === 'cls+dist' ? 2 : tokens === 'cls' ? 1 : 0) + regTokens;
  const noEmbedClass = posEmbedLayout(pos[1]!, nTok, patchSize, partial);
  const patches = pos[1]! - (noEmbedClass ? 0 : nTok);
  const grid = Math.round(Math.sqrt(patches));

  const fromWeights = {
    imageSize: grid * patchSize,
    patchSize,
    inChannels: patch[1]!,
    dim,
    depth,
    mlpDim: fc1[0]!,
    qkvBias: weights.has('blocks.0.attn.qkv.bias'),
    tokens,
    regTokens,
    noEmbedClass,
    numClasses: head ? head[0]! : 0,
    // timm: avg pooling is followed by fc_norm; without fc_norm the config decides (checkWeights then checks).
    ...(weights.has('fc_norm.weight') && partial.fcNorm === undefined && { globalPool: 'avg' as const }),
  } satisfies Partial<ViTConfig>;
  const disagree: [string, unknown][] = Object.entries(fromWeights).filter(([k, v]) => {
    const said = partial[k as keyof typeof partial];
    return said !== undefined && said !== v;
  });
  // LayerScale: the config states its initial value (or that there is none); the weights show whether it is there.
  const hasLayerScale = weights.has('blocks.0.ls1.gamma');
  if (statedLayerScale === null && hasLayerScale) disagree.push(['layerScale', 'present (blocks.0.ls1.gamma)']);
  if (typeof statedLayerScale === 'number' && !hasLayerScale) disagree.push(['layerScale', 'absent (no blocks.0.ls1.gamma)']);
  // The final norm (pre-norm): over the tokens (`norm`), after the pool (`fc_norm`) or none.
  const norms = (partial.norm ?? 'pre') === 'pre' && { finalNorm: weights.has('norm.weight') || weights.has('fc_norm.weight'), fcNorm: weights.has('fc_norm.weight') };
  if (norms && partial.finalNorm !== undefined && partial.finalNorm !== norms.finalNorm) disagree.push(['finalNorm', norms.finalNorm]);
  if (norms && norms.finalNorm && partial.fcNorm !== undefined && partial.fcNorm !== norms.fcNorm) disagree.push(['fcNorm', norms.fcNorm]);
  if (disagree.length) {
    const what = disagree.map(([k, v]) => `${k} ${JSON.stringify(k === 'layerScale' ? statedLayerScale : partial[k as keyof typeof partial])} (weights: ${JSON.stringify(v)})`);
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
    ...(hasLayerScale && { layerScale: statedLayerScale ?? 1e-5 }), // timm's LayerScale default where unstated
    ...norms,
    heads,
  };
  // Options at their defaults are left out, so a plain ViT's config reads as it always has.
  if (!config.regTokens) delete config.regTokens;
  if (!config.noEmbedClass) delete config.noEmbedClass;
  if (config.finalNorm !== false) delete config.finalNorm;
  if (config.norm === 'post' || config.finalNorm === false || config.fcNorm === (config.globalPool === 'avg')) delete config.fcNorm;
  validateConfig(config);
  return config;
}

/**
 * Whether the position embedding's `rows` leave out the `nTok` prefix tokens (timm
 * no_embed_class): the patches form a square grid either way, so the config decides where it
 * says (no_embed_class, or the image size), else the one reading that is a square grid.
 */
function posEmbedLayout(rows: number, nTok: number, patchSize: number, partial: Partial<ViTConfig>): boolean {
  const square = (n: number) => n > 0 && Number.isInteger(Math.sqrt(n));
  if (nTok === 0) return partial.noEmbedClass ?? false; // nothing to leave out: either reading is the same
  const readings = [false, true].filter((skip) => square(rows - (skip ? 0 : nTok)));
  const what = (skip: boolean) => (skip ? 'the patches only (no_embed_class)' : `${nTok} prefix tokens and the patches`);
  if (partial.noEmbedClass !== undefined) {
    if (!readings.includes(partial.noEmbedClass)) throw new Error(`config: pos_embed has ${rows} rows, not a square grid for ${what(partial.noEmbedClass)}`);
    return partial.noEmbedClass;
  }
  if (partial.imageSize !== undefined && partial.imageSize % patchSize === 0) {
    const patches = (partial.imageSize / patchSize) ** 2;
    const match = readings.find((skip) => rows - (skip ? 0 : nTok) === patches);
    if (match !== undefined) return match;
  }
  if (readings.length === 1) return readings[0]!;
  if (readings.length === 0) throw new Error(`checkpoint: pos_embed has ${rows} rows: neither ${rows - nTok} nor ${rows} patch positions is a square grid`);
  throw new Error(`config: pos_embed's ${rows} rows read either way (with or without the ${nTok} prefix tokens); state no_embed_class or the image size`);
}
