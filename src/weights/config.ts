// A checkpoint's JSON config, in any of three dialects, read into ViTConfig fields. Ours uses
// ViTConfig's own names; timm's config.json / pretrained_cfg uses embed_dim, num_heads, input_size,
// ... (with model_args and pretrained_cfg nested); Hugging Face's config.json uses hidden_size,
// num_attention_heads, ... . The dialects' names do not collide, so one object may mix them (our
// public configs carry timm's `architecture`). Only what a file states is returned, with what its
// timm architecture name implies (architectureDefaults: `deit3_*`, `*_dinov2`, `*_regN_*`), since
// timm's configs repeat only the arguments that differ from the architecture's: the weights fill
// in the rest and must agree with what is stated (inferConfig in keys.ts), and features this
// engine lacks are refused here with a message, not run wrongly.
import type { Shapes } from '../graph/model';
import { architectureDefaults, type ViTConfig } from '../models/vit/config';
import { inferConfig, type StatedViTConfig } from '../models/vit/keys';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

const positiveInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0;
const count = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;
const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const bool = (v: unknown): v is boolean => typeof v === 'boolean';
const string = (v: unknown): v is string => typeof v === 'string';
const numbers = (v: unknown): v is number[] => Array.isArray(v) && v.every(finite);
const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every(string);
const oneOf = <T extends string>(...xs: T[]) => (v: unknown): v is T => xs.includes(v as T);

/** A config file's text as a JSON object; "config: ..." errors for an empty file, bad JSON or another JSON value. */
export function parseJsonText(text: string): Json {
  if (text.trim() === '') throw new Error(text === '' ? 'config: empty file (0 bytes)' : 'config: empty file (only white space)');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`config: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  return expectObject(json);
}

function expectObject(json: unknown): Json {
  if (!isObject(json)) throw new Error(`config: expected a JSON object, got ${Array.isArray(json) ? 'an array' : json === null ? 'null' : typeof json}`);
  return json;
}

export function parseConfigJson(input: unknown, base: StatedViTConfig = {}): StatedViTConfig {
  const json = typeof input === 'string' ? parseJsonText(input) : expectObject(input);
  for (const k of ['pretrained_cfg', 'model_args']) {
    if (json[k] != null && !isObject(json[k])) throw new Error(`config: ${k} must be an object`);
  }
  // timm nests preprocessing in pretrained_cfg and constructor arguments in model_args.
  const j: Json = { ...(json.pretrained_cfg as Json | undefined), ...json, ...(json.model_args as Json | undefined) };

  // The first of `keys` present (null counts as absent, as in timm's "use the default"), type-checked.
  const known = new Set(['architecture', 'architectures', 'pretrained_cfg', 'model_args']);
  function pick<T>(keys: string[], check: (v: unknown) => v is T, what: string): T | undefined {
    keys.forEach((k) => known.add(k));
    for (const k of keys) {
      const v = j[k];
      if (v === undefined || v === null) continue;
      if (!check(v)) throw new Error(`config: ${k} must be ${what}, got ${JSON.stringify(v)}`);
      return v;
    }
    return undefined;
  }

  // Model families other than plain ViT / DeiT: refused by name rather than loaded as a ViT.
  const modelType = pick(['model_type'], string, 'a string');
  if (modelType !== undefined && !['vit', 'deit', 'dinov2', 'dinov2_with_registers'].includes(modelType)) {
    throw new Error(`config: model_type "${modelType}" is not supported (only vit, deit, dinov2 and dinov2_with_registers)`);
  }
  const dinov2 = modelType === 'dinov2' || modelType === 'dinov2_with_registers';
  const architecture = pick(['architecture'], string, 'a string');
  if (architecture !== undefined && !/^(vit|deit|deit3)_/.test(architecture)) {
    throw new Error(`config: architecture "${architecture}" is not supported (only timm vit_*, deit_* and deit3_* models)`);
  }
  const implied = architecture === undefined ? {} : architectureDefaults(architecture);
  const hfArchitectures = pick(['architectures'], strings, 'a list of strings') ?? [];
  if (hfArchitectures.some((a) => /^Dinov2(WithRegisters)?ForImageClassification$/.test(a))) {
    throw new Error('config: Dinov2ForImageClassification\'s classifier reads the class token and the patches\' mean side by side, which this engine does not support; load the Dinov2Model backbone');
  }
  // A Hugging Face backbone (Dinov2Model, ViTModel) carries placeholder labels but has no classifier.
  const backbone = hfArchitectures.length > 0 && hfArchitectures.every((a) => a.endsWith('Model'));
  const act = pick(['hidden_act'], string, 'a string');
  if (act !== undefined && act !== 'gelu') throw new Error(`config: hidden_act "${act}" is not supported (only exact GELU, "gelu")`);
  if (pick(['use_swiglu_ffn'], bool, 'true or false') === true) throw new Error('config: use_swiglu_ffn (a SwiGLU MLP) is not supported');
  // Hugging Face's Dinov2WithRegisters: its registers take no position, and its class row is folded
  // into the class token on loading (models/vit/keys.ts), so its position embedding has no prefix rows.
  const noEmbedClass = pick(['noEmbedClass', 'no_embed_class'], bool, 'true or false') ?? (modelType === 'dinov2_with_registers' ? true : undefined);
  const regTokens = pick(['regTokens', 'reg_tokens', 'num_register_tokens'], count, 'a non-negative integer');
  // timm's init_values: a number turns LayerScale on; null or 0 stated in model_args turns it off
  // (timm: `LayerScale(...) if init_values else nn.Identity()`). Hugging Face DINOv2 always has it.
  known.add('init_values');
  const initValues = j.init_values;
  if (initValues !== undefined && initValues !== null && !finite(initValues)) throw new Error(`config: init_values must be a number or null, got ${JSON.stringify(initValues)}`);
  const ownLayerScale = pick(['layerScale'], finite, 'a number');
  const hfLayerScale = dinov2 ? (pick(['layerscale_value'], finite, 'a number') ?? 1) : undefined;
  const layerScale = ownLayerScale ?? hfLayerScale ?? ('init_values' in j ? (initValues ? initValues as number : null) : undefined);
  // timm's pre_norm adds a LayerNorm (norm_pre) before the blocks, as in CLIP; this engine has none.
  if (pick(['pre_norm'], bool, 'true or false') === true) throw new Error('config: pre_norm (a LayerNorm before the first block, CLIP style) is not supported');

  const inputSize = pick(['input_size'], (v): v is number[] => numbers(v) && v.length === 3, '[channels, height, width]');
  // timm's dynamic_img_size: the model runs at any size (the position embedding resampled per
  // input), so a non-square input_size is the size it was run at, not the square one it was
  // trained at: that comes from the weights (or img_size), and planForward takes [height, width].
  const dynamic = pick(['dynamic_img_size'], bool, 'true or false') ?? false;
  const squareInput = inputSize && inputSize[1] === inputSize[2];
  if (inputSize && !squareInput && !dynamic) throw new Error(`config: input_size [${inputSize.join(', ')}] is not square`);
  const dim = pick(['dim', 'embed_dim', 'hidden_size'], positiveInt, 'a positive integer');
  const mlpRatio = pick(['mlp_ratio'], finite, 'a number');

  const globalPool = pick(['globalPool', 'global_pool'], oneOf('token', 'avg', '', 'map', 'max', 'avgmax'), '"token" or "avg"');
  if (globalPool !== undefined && globalPool !== 'token' && globalPool !== 'avg') {
    throw new Error(`config: global_pool ${JSON.stringify(globalPool)} is not supported (token or avg)`);
  }
  // timm's fc_norm defaults to "avg pooling has it"; fc_norm=False with avg pooling keeps the norm
  // over the tokens (or none, with final_norm=False). fc_norm after token pooling has no place here.
  const fcNorm = pick(['fcNorm', 'fc_norm'], bool, 'true or false');
  if (fcNorm === true && globalPool !== 'avg') {
    throw new Error(`config: fc_norm true with global_pool ${JSON.stringify(globalPool ?? 'token')} is not supported (fc_norm goes with avg pooling only)`);
  }
  const finalNorm = pick(['finalNorm', 'final_norm'], bool, 'true or false');

  const classToken = pick(['class_token'], bool, 'true or false');
  const distilled = (architecture?.includes('distilled') ?? false) || hfArchitectures.some((a) => a.endsWith('WithTeacher'));
  const tokens = pick(['tokens'], oneOf('cls', 'cls+dist', 'none'), '"cls", "cls+dist" or "none"')
    ?? (classToken === false ? 'none' : distilled ? 'cls+dist' : undefined);

  const labels = pick(['labels', 'label_names'], strings, 'a list of strings') ?? id2label(pick(['id2label'], isObject, 'an object'));
  const out: StatedViTConfig = {
    ...implied,
    ...(noEmbedClass !== undefined && { noEmbedClass }),
    ...(regTokens !== undefined && { regTokens }),
    ...(layerScale !== undefined && { layerScale }),
    fcNorm,
    finalNorm,
    imageSize: pick(['imageSize', 'img_size', 'image_size'], positiveInt, 'a positive integer') ?? (squareInput ? inputSize[2] : undefined),
    patchSize: pick(['patchSize', 'patch_size'], positiveInt, 'a positive integer') ?? implied.patchSize,
    inChannels: pick(['inChannels', 'in_chans', 'num_channels'], positiveInt, 'a positive integer') ?? inputSize?.[0],
    dim,
    depth: pick(['depth', 'num_hidden_layers'], positiveInt, 'a positive integer'),
    heads: pick(['heads', 'num_heads', 'num_attention_heads'], positiveInt, 'a positive integer'),
    mlpDim: pick(['mlpDim', 'intermediate_size'], positiveInt, 'a positive integer') ?? (mlpRatio !== undefined && dim !== undefined ? Math.round(mlpRatio * dim) : undefined),
    qkvBias: pick(['qkvBias', 'qkv_bias'], bool, 'true or false'),
    eps: pick(['eps', 'layer_norm_eps'], finite, 'a number'),
    tokens,
    globalPool,
    norm: pick(['norm'], oneOf('pre', 'post'), '"pre" or "post"'),
    numClasses: backbone ? 0 : pick(['numClasses', 'num_classes', 'num_labels'], count, 'a non-negative integer') ?? labels?.length,
    mean: pick(['mean', 'image_mean'], numbers, 'a list of numbers'),
    std: pick(['std', 'image_std'], numbers, 'a list of numbers'),
    cropPct: pick(['cropPct', 'crop_pct'], finite, 'a number'),
    labels: backbone ? undefined : labels,
  };
  const keys = Object.keys(j);
  if (keys.length && !keys.some((k) => known.has(k))) {
    throw new Error(`config: none of the fields ${keys.slice(0, 5).join(', ')} is a ViTConfig, timm or Hugging Face ViT config field`);
  }
  const stated = Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined)) as StatedViTConfig;
  return { ...base, ...stated };
}

/** Hugging Face's {"0": "tench", "1": "goldfish", ...} as a list in index order. */
export function id2label(map: Json | undefined): string[] | undefined {
  if (!map) return undefined;
  const n = Object.keys(map).length;
  const labels: string[] = [];
  for (let i = 0; i < n; i++) {
    const label = map[String(i)];
    if (typeof label !== 'string') throw new Error(`config: id2label must map 0..${n - 1} to strings (index ${i} is ${JSON.stringify(label)})`);
    labels.push(label);
  }
  return labels;
}

/** The full config for timm-named weights and a checkpoint's JSON config (none: weights alone). */
export function parseConfig(json: unknown, weights: Shapes): ViTConfig {
  return inferConfig(weights, json == null ? {} : parseConfigJson(json));
}
