// From checkpoint bytes and a config to validated host weights: parse, map key names to timm's,
// merge the config with what the weights show, check every tensor (shapes, and every value
// finite). Nothing reaches the GPU until all of this has passed.
import { prefixTokens, validateConfig, type ViTConfig } from '../models/config';
import { checkWeights } from '../models/params';
import type { HostWeights } from '../models/vit';
import { formatBytes, MAX_CHECKPOINT_BYTES, tokenLimitProblem } from '../limits';
import { parseConfig } from './config';
import { checkFiniteTensor } from './finite';
import { toTimmNames } from './keys';
import { parseSafetensors } from './safetensors';

export interface LoadProgress { stage: 'download' | 'parse' | 'upload'; loaded: number; total?: number }

export interface LoadOptions {
  /** Largest checkpoint accepted, in bytes (default and upper bound: MAX_CHECKPOINT_BYTES). */
  maxBytes?: number;
}

/** The checkpoint size limit in force: the option, never above MAX_CHECKPOINT_BYTES. */
export function checkpointLimit(options: LoadOptions = {}): number {
  return Math.min(options.maxBytes ?? MAX_CHECKPOINT_BYTES, MAX_CHECKPOINT_BYTES);
}

/** Throws when a checkpoint of `bytes` bytes is over the limit, before anything reads it. */
export function checkCheckpointSize(bytes: number, options: LoadOptions = {}): void {
  const limit = checkpointLimit(options);
  if (bytes > limit) {
    throw new Error(`checkpoint: ${formatBytes(bytes)} is over the limit of ${formatBytes(limit)} for one checkpoint`);
  }
}

export function loadCheckpoint(bytes: ArrayBuffer | Uint8Array, configJson: unknown, onProgress?: (p: LoadProgress) => void, options: LoadOptions = {}): { config: ViTConfig; weights: HostWeights } {
  checkCheckpointSize(bytes.byteLength, options);
  onProgress?.({ stage: 'parse', loaded: 0, total: 1 });
  const file = parseSafetensors(bytes);
  // Each tensor is checked as it is read, under the name the file gives it (Hugging Face's
  // separate query/key/value included), so the message points into the file the user has.
  const weights = toTimmNames({ ...file, get: (name: string) => {
    const data = file.get(name);
    checkFiniteTensor(name, data);
    return data;
  } });
  // Files this engine exported carry their config (labels included) in the metadata.
  const config = parseConfig(configJson ?? file.metadata.config, weights);
  validateConfig(config);
  // A model whose own input size is over the limit could load but never classify: refused now.
  const tooMany = tokenLimitProblem(config.imageSize, config.patchSize, prefixTokens(config));
  if (tooMany) throw new Error(`config: imageSize ${config.imageSize}: ${tooMany}`);
  checkWeights(config, weights);
  onProgress?.({ stage: 'parse', loaded: 1, total: 1 });
  return { config, weights };
}
