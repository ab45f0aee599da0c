// Training checkpoints: weights, AdamW moments and the step, as one safetensors file whose
// metadata carries the model config. Exports for other tools are the weights alone, with timm names.
import type { ModelConfig } from '../graph/family';
import type { HostWeights } from '../graph/model';
import { parseSafetensors, serializeSafetensors } from '../weights/safetensors';

export const CHECKPOINT_FORMAT = 'vitgpu-checkpoint-1';

export interface Checkpoint {
  name: string;
  config: ModelConfig;
  step: number;
  epoch: number;
  weights: HostWeights;
  /** `m.<param>` and `v.<param>` for each trainable parameter. */
  optimizer: Map<string, Float32Array>;
}

export function serializeCheckpoint(c: Checkpoint): Uint8Array {
  const tensors = [...c.weights].map(([name, w]) => ({ name, shape: w.shape, data: w.data }));
  for (const [name, data] of c.optimizer) tensors.push({ name: `optimizer.${name}`, shape: [data.length], data });
  return serializeSafetensors(tensors, {
    format: CHECKPOINT_FORMAT, name: c.name, step: String(c.step), epoch: String(c.epoch), config: JSON.stringify(c.config),
  });
}

export function parseCheckpoint(bytes: ArrayBuffer | Uint8Array): Checkpoint {
  const st = parseSafetensors(bytes);
  const meta = st.metadata;
  if (meta.format !== CHECKPOINT_FORMAT) throw new Error(`checkpoint: not a training checkpoint of this engine (format ${JSON.stringify(meta.format)})`);
  const weights: HostWeights = new Map();
  const optimizer = new Map<string, Float32Array>();
  for (const name of st.names()) {
    if (name.startsWith('optimizer.')) optimizer.set(name.slice('optimizer.'.length), st.get(name));
    else weights.set(name, { shape: st.entries.get(name)!.shape, data: st.get(name) });
  }
  return { name: meta.name ?? '', config: JSON.parse(meta.config ?? '{}') as ModelConfig, step: Number(meta.step), epoch: Number(meta.epoch), weights, optimizer };
}

/** Config fields that leave the parameters as they are: preprocessing, class names, LayerNorm's eps. */
const NOT_ARCHITECTURE = new Set(['labels', 'mean', 'std', 'cropPct', 'eps']);

/** Refuses a checkpoint whose architecture differs from the model's, naming both. */
export function checkCompatible(model: { name: string; config: ModelConfig }, ckpt: Checkpoint): void {
  const mine = model.config as unknown as Record<string, unknown>;
  const theirs = ckpt.config as unknown as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(mine), ...Object.keys(theirs)])].filter((k) => !NOT_ARCHITECTURE.has(k));
  // A config without a family is a ViT's (written before families existed).
  const value = (config: Record<string, unknown>, k: string) => JSON.stringify(k === 'family' ? config[k] ?? 'vit' : config[k]);
  const differ = keys.filter((k) => value(mine, k) !== value(theirs, k));
  if (differ.length) {
    throw new Error(`checkpoint "${ckpt.name}" is for another model than "${model.name}": ${differ.map((k) => `${k} ${value(theirs, k)} vs ${value(mine, k)}`).join(', ')}`);
  }
}

/**
 * Weights alone, timm names, F32: loads in timm / PyTorch with safetensors.torch.load_file. The
 * metadata's `config` is the model's config.json: our fields, and where timm can build the model,
 * timm's (`architecture`, `model_args`, `pretrained_cfg`, `label_names`) beside them, so
 * `timm.create_model(cfg['architecture'], **cfg['model_args'])` takes these weights as they are.
 */
export function exportWeights(weights: HostWeights, config: ModelConfig, timm?: { architecture: string; model_args: Record<string, unknown> }): Uint8Array {
  return serializeSafetensors([...weights].map(([name, w]) => ({ name, shape: w.shape, data: w.data })), { format: 'pt', config: JSON.stringify(exportConfig(config, timm)) });
}

/** The config.json of an exported model (see exportWeights). */
export function exportConfig(config: ModelConfig, timm?: { architecture: string; model_args: Record<string, unknown> }): Record<string, unknown> {
  if (!timm) return { ...config };
  return {
    ...timm,
    num_classes: config.numClasses,
    ...(config.labels && { label_names: config.labels }),
    pretrained_cfg: {
      input_size: [config.inChannels, config.imageSize, config.imageSize], mean: config.mean, std: config.std, crop_pct: config.cropPct,
      interpolation: 'bicubic', num_classes: config.numClasses,
    },
    ...config,
  };
}
