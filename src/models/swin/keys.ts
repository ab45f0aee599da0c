// A Swin checkpoint's names (timm's, and Hugging Face SwinForImageClassification's mapped onto
// them), and its config from a timm or Hugging Face config.json and the tensors.
//
// What wins when they disagree: the tensors fix what they show (widths, depths, heads per stage
// from the bias tables' columns, windows from their rows, MLP ratio, qkv bias, classes, channels,
// patch size). A timm architecture name only supplies defaults, so the tensors override it
// silently; a field the config states explicitly (model_args, a Hugging Face field) must agree
// with the tensors, or the load is refused naming the field. The image size, LayerNorm eps,
// preprocessing and labels come from the config alone (default: the architecture's, else 224).
import type { Shapes } from '../../graph/model';
import { id2label, parseJsonText } from '../../weights/config';
import type { KeyMap } from '../../weights/keys';
import { IMAGENET } from '../common';
import { SWIN_SIZES, swinStages, validateSwinConfig, type SwinConfig } from './config';

export const SWIN_KEYS: KeyMap = {
  timm: [
    /^patch_embed\.(proj|norm)\.(weight|bias)$/,
    /^layers\.\d+\.blocks\.\d+\.(norm1|attn\.qkv|attn\.proj|norm2|mlp\.fc1|mlp\.fc2)\.(weight|bias)$/,
    /^layers\.\d+\.blocks\.\d+\.attn\.relative_position_bias_table$/,
    /^layers\.\d+\.downsample\.(norm\.(weight|bias)|reduction\.weight)$/,
    /^(norm|head\.fc)\.(weight|bias)$/,
  ],
  // Index buffers timm and Hugging Face recompute.
  ignored: /(^|\.)relative_position_index$/,
  huggingface: {
    detect: /^(swin\.)?(embeddings|encoder)\./,
    prefix: /^swin\./,
    rules: [
      [/^embeddings\.patch_embeddings\.projection\.(weight|bias)$/, 'patch_embed.proj.$1'],
      [/^embeddings\.norm\.(weight|bias)$/, 'patch_embed.norm.$1'],
      [/^encoder\.layers\.(\d+)\.blocks\.(\d+)\.layernorm_before\.(weight|bias)$/, 'layers.$1.blocks.$2.norm1.$3'],
      [/^encoder\.layers\.(\d+)\.blocks\.(\d+)\.attention\.self\.relative_position_bias_table$/, 'layers.$1.blocks.$2.attn.relative_position_bias_table'],
      [/^encoder\.layers\.(\d+)\.blocks\.(\d+)\.attention\.output\.dense\.(weight|bias)$/, 'layers.$1.blocks.$2.attn.proj.$3'],
      [/^encoder\.layers\.(\d+)\.blocks\.(\d+)\.layernorm_after\.(weight|bias)$/, 'layers.$1.blocks.$2.norm2.$3'],
      [/^encoder\.layers\.(\d+)\.blocks\.(\d+)\.intermediate\.dense\.(weight|bias)$/, 'layers.$1.blocks.$2.mlp.fc1.$3'],
      [/^encoder\.layers\.(\d+)\.blocks\.(\d+)\.output\.dense\.(weight|bias)$/, 'layers.$1.blocks.$2.mlp.fc2.$3'],
      // Hugging Face merges patches at the end of a stage; timm at the start of the next one.
      [/^encoder\.layers\.(\d+)\.downsample\.(norm\.weight|norm\.bias|reduction\.weight)$/, (_, stage, rest) => `layers.${Number(stage) + 1}.downsample.${rest}`],
      [/^layernorm\.(weight|bias)$/, 'norm.$1'],
      [/^classifier\.(weight|bias)$/, 'head.fc.$1'],
    ],
    qkv: { pattern: /^encoder\.layers\.(\d+)\.blocks\.(\d+)\.attention\.self\.(?<part>query|key|value)\.(weight|bias)$/, target: 'layers.$1.blocks.$2.attn.qkv.$4' },
  },
};

/** The original Microsoft layout: recognised so it is refused by name rather than half-mapped. */
export function isMicrosoftSwin(names: readonly string[]): boolean {
  return names.some((n) => /(^|\.)attn_mask$/.test(n) || n === 'head.weight' || /^layers\.0\.downsample\./.test(n));
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Whether a checkpoint's JSON config names a Swin (timm `architecture: swin_*`, Hugging Face `model_type: swin`). */
export function isSwinConfig(json: unknown): boolean {
  if (typeof json === 'string') {
    try {
      json = JSON.parse(json);
    } catch {
      return false;
    }
  }
  if (!isObject(json)) return false;
  const cfg = isObject(json.pretrained_cfg) ? json.pretrained_cfg : {};
  const arch = json.architecture ?? cfg.architecture;
  return json.family === 'swin' || json.model_type === 'swin' || (typeof arch === 'string' && arch.startsWith('swin'));
}

/**
 * A full Swin config from a checkpoint's JSON config (timm's config.json, Hugging Face's, or the
 * one this engine exports, which uses SwinConfig's own names) and its timm-named tensors.
 */
export function swinConfigFrom(input: unknown, weights: Shapes): SwinConfig {
  const json = typeof input === 'string' ? parseJsonText(input) : input ?? {};
  if (!isObject(json)) throw new Error('config: expected a JSON object');
  const j: Json = { ...(isObject(json.pretrained_cfg) ? json.pretrained_cfg : {}), ...json, ...(isObject(json.model_args) ? json.model_args : {}) };
  const arch = typeof j.architecture === 'string' ? /^swin_(tiny|small|base|large)_patch(\d+)_window(\d+)_(\d+)/.exec(j.architecture) : null;
  if (typeof j.architecture === 'string' && !arch) throw new Error(`config: architecture "${j.architecture}" is not a Swin this engine knows (swin_{tiny,small,base,large}_patch<P>_window<W>_<size>)`);
  const defaults: Partial<SwinConfig> = arch ? { ...SWIN_SIZES[arch[1] as keyof typeof SWIN_SIZES], patchSize: Number(arch[2]), window: Number(arch[3]), imageSize: Number(arch[4]) } : {};
  if (j.use_absolute_embeddings === true || j.ape === true) throw new Error('config: absolute position embeddings in a Swin (use_absolute_embeddings) are not supported');
  if (j.hidden_act !== undefined && j.hidden_act !== 'gelu') throw new Error(`config: hidden_act ${JSON.stringify(j.hidden_act)} is not supported (only exact GELU, "gelu")`);

  // What the config states explicitly, by our field names.
  const first = (...keys: string[]) => keys.map((k) => j[k]).find((v) => v !== undefined && v !== null);
  const inputSize = Array.isArray(j.input_size) ? (j.input_size as number[]) : undefined;
  const labels = (first('labels', 'label_names') as string[] | undefined) ?? id2label(isObject(j.id2label) ? j.id2label : undefined);
  const stated: Partial<SwinConfig> = {
    imageSize: (first('imageSize', 'img_size', 'image_size') as number | undefined) ?? inputSize?.[2],
    patchSize: first('patchSize', 'patch_size') as number | undefined,
    inChannels: (first('inChannels', 'in_chans', 'num_channels') as number | undefined) ?? inputSize?.[0],
    embedDim: first('embedDim', 'embed_dim') as number | undefined,
    depths: first('depths') as number[] | undefined,
    heads: first('heads', 'num_heads') as number[] | undefined,
    window: first('window', 'window_size') as number | undefined,
    mlpRatio: first('mlpRatio', 'mlp_ratio') as number | undefined,
    qkvBias: first('qkvBias', 'qkv_bias') as boolean | undefined,
    eps: first('eps', 'layer_norm_eps') as number | undefined,
    numClasses: (first('numClasses', 'num_classes', 'num_labels') as number | undefined) ?? labels?.length,
    mean: first('mean', 'image_mean') as number[] | undefined,
    std: first('std', 'image_std') as number[] | undefined,
    cropPct: first('cropPct', 'crop_pct') as number | undefined,
    labels,
  };
  if (inputSize && inputSize[1] !== inputSize[2]) throw new Error(`config: input_size [${inputSize.join(', ')}] is not square`);
  const fromWeights = swinShapesFromWeights(weights);
  const disagree = (Object.keys(fromWeights) as (keyof typeof fromWeights)[]).filter((k) => stated[k] !== undefined && JSON.stringify(stated[k]) !== JSON.stringify(fromWeights[k]));
  if (disagree.length) {
    throw new Error(`config: disagrees with the weights: ${disagree.map((k) => `${k} ${JSON.stringify(stated[k])} (weights: ${JSON.stringify(fromWeights[k])})`).join(', ')}`);
  }
  const channels = fromWeights.inChannels;
  const config: SwinConfig = {
    family: 'swin', imageSize: 224, window: 7, eps: 1e-5, cropPct: 0.9,
    mean: channels === 3 ? IMAGENET.mean : new Array<number>(channels).fill(0.5),
    std: channels === 3 ? IMAGENET.std : new Array<number>(channels).fill(0.5),
    ...defaults,
    ...Object.fromEntries(Object.entries(stated).filter(([, v]) => v !== undefined)),
    ...fromWeights,
  } as SwinConfig;
  validateSwinConfig(config);
  // The tables' rows are each stage's window after clamping to its resolution at the config's image size.
  swinStages(config).forEach((stage, s) => {
    const rows = weights.get(`layers.${s}.blocks.0.attn.relative_position_bias_table`)!.shape[0]!;
    if (rows !== (2 * stage.window - 1) ** 2) {
      throw new Error(`config: layers.${s}.blocks.0.attn.relative_position_bias_table has ${rows} rows; a ${stage.window}x${stage.window} window (window ${config.window} at image size ${config.imageSize}) needs ${(2 * stage.window - 1) ** 2}`);
    }
  });
  return config;
}

/** What a Swin's tensors show of its architecture. */
function swinShapesFromWeights(weights: Shapes): Pick<SwinConfig, 'patchSize' | 'inChannels' | 'embedDim' | 'depths' | 'heads' | 'mlpRatio' | 'qkvBias' | 'numClasses'> {
  const shape = (n: string) => weights.get(n)?.shape;
  const required = ['patch_embed.proj.weight', 'layers.0.blocks.0.mlp.fc1.weight', 'head.fc.weight'];
  const missing = required.filter((n) => !weights.has(n));
  if (missing.length) throw new Error(`checkpoint: not a Swin checkpoint this engine knows (missing ${missing.join(', ')})`);
  const patch = shape('patch_embed.proj.weight')!;
  if (patch.length !== 4 || patch[2] !== patch[3]) throw new Error(`checkpoint: patch_embed.proj.weight [${patch.join(', ')}] is not [dim, channels, P, P]`);
  const depths: number[] = [];
  for (const n of weights.keys()) {
    const m = /^layers\.(\d+)\.blocks\.(\d+)\./.exec(n);
    if (m) depths[Number(m[1])] = Math.max(depths[Number(m[1])] ?? 0, Number(m[2]) + 1);
  }
  const stages = Array.from({ length: depths.length }, (_, s) => s);
  const gap = stages.find((s) => !depths[s]);
  if (gap !== undefined) throw new Error(`checkpoint: stage ${gap} has no blocks (layers.${gap}.blocks.0.* missing)`);
  const heads = stages.map((s) => {
    const table = shape(`layers.${s}.blocks.0.attn.relative_position_bias_table`);
    if (!table || table.length !== 2) throw new Error(`checkpoint: layers.${s}.blocks.0.attn.relative_position_bias_table is missing or not [rows, heads]`);
    const side = Math.sqrt(table[0]!);
    if (!Number.isInteger(side) || side % 2 !== 1) throw new Error(`checkpoint: layers.${s}.blocks.0.attn.relative_position_bias_table has ${table[0]} rows, not (2 * window - 1)^2`);
    return table[1]!;
  });
  const embedDim = patch[0]!;
  return {
    patchSize: patch[2]!, inChannels: patch[1]!, embedDim, depths: depths.slice(), heads,
    mlpRatio: shape('layers.0.blocks.0.mlp.fc1.weight')![0]! / embedDim,
    qkvBias: weights.has('layers.0.blocks.0.attn.qkv.bias'),
    numClasses: shape('head.fc.weight')![0]!,
  };
}
