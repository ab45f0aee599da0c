// Training checkpoints: weights, AdamW moments and the step, as one safetensors file whose
// metadata carries the model config. Exports for other tools are the weights alone, with timm names.
import type { ViTConfig } from '../models/config';
import type { HostWeights } from '../models/vit';
import { parseSafetensors, serializeSafetensors } from '../weights/safetensors';

export const CHECKPOINT_FORMAT = 'vitgpu-checkpoint-1';

export interface Checkpoint {
  name: string;
  config: ViTConfig;
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
  return { name: meta.name ?? '', config: JSON.parse(meta.config ?? '{}') as ViTConfig, step: Number(meta.step), epoch: Number(meta.epoch), weights, optimizer };
}

/** Refuses a checkpoint whose architecture differs from the model's, naming both. */
export function checkCompatible(model: { name: string; config: ViTConfig }, ckpt: Checkpoint): void {
  const keys: (keyof ViTConfig)[] = ['imageSize', 'patchSize', 'inChannels', 'dim', 'depth', 'heads', 'mlpDim', 'qkvBias', 'tokens', 'globalPool', 'norm', 'numClasses'];
  const differ = keys.filter((k) => JSON.stringify(model.config[k]) !== JSON.stringify(ckpt.config[k]));
  if (differ.length) {
    throw new Error(`checkpoint "${ckpt.name}" is for another model than "${model.name}": ${differ.map((k) => `${k} ${JSON.stringify(ckpt.config[k])} vs ${JSON.stringify(model.config[k])}`).join(', ')}`);
  }
}

/** Weights alone, timm names, F32: loads in timm / PyTorch with safetensors.torch.load_file. */
export function exportWeights(weights: HostWeights, config: ViTConfig): Uint8Array {
  return serializeSafetensors([...weights].map(([name, w]) => ({ name, shape: w.shape, data: w.data })), { format: 'pt', config: JSON.stringify(config) });
}
