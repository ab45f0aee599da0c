// From checkpoint bytes and a config to validated host weights: parse, find the model family, map
// key names to timm's, merge the config with what the weights show, check every tensor. Nothing
// reaches the GPU until all of this has passed.
import { checkWeights, type HostWeights } from '../graph/model';
import { checkpointFormat, familyOf, type AnyConfig } from '../models/registry';
import { toTimmNames } from './keys';
import { parseSafetensors } from './safetensors';

export interface LoadProgress { stage: 'download' | 'parse' | 'upload'; loaded: number; total?: number }

export function loadCheckpoint(bytes: ArrayBuffer | Uint8Array, configJson: unknown, onProgress?: (p: LoadProgress) => void): { config: AnyConfig; weights: HostWeights } {
  onProgress?.({ stage: 'parse', loaded: 0, total: 1 });
  const file = parseSafetensors(bytes);
  // Files this engine exported carry their config (labels included) in the metadata.
  const json = configJson ?? file.metadata.config;
  const format = checkpointFormat(json, file.names());
  const weights = toTimmNames(file, format.keys);
  const config = format.config(json, weights);
  const family = familyOf(config);
  family.validate(config);
  checkWeights(family.parameterShapes(config), weights);
  onProgress?.({ stage: 'parse', loaded: 1, total: 1 });
  return { config, weights };
}
