// From checkpoint bytes and a config to validated host weights: parse, map key names to timm's,
// merge the config with what the weights show, check every tensor. Nothing reaches the GPU until
// all of this has passed.
import { validateConfig, type ViTConfig } from '../models/config';
import { checkWeights } from '../models/params';
import type { HostWeights } from '../models/vit';
import { parseConfig } from './config';
import { toTimmNames } from './keys';
import { parseSafetensors } from './safetensors';

export interface LoadProgress { stage: 'download' | 'parse' | 'upload'; loaded: number; total?: number }

export function loadCheckpoint(bytes: ArrayBuffer | Uint8Array, configJson: unknown, onProgress?: (p: LoadProgress) => void): { config: ViTConfig; weights: HostWeights } {
  onProgress?.({ stage: 'parse', loaded: 0, total: 1 });
  const file = parseSafetensors(bytes);
  const weights = toTimmNames(file);
  // Files this engine exported carry their config (labels included) in the metadata.
  const config = parseConfig(configJson ?? file.metadata.config, weights);
  validateConfig(config);
  checkWeights(config, weights);
  onProgress?.({ stage: 'parse', loaded: 1, total: 1 });
  return { config, weights };
}
