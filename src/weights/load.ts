// From checkpoint bytes and a config to validated host weights: parse, find the model family, map
// key names to timm's, merge the config with what the weights show, check every tensor (shapes,
// and every value finite). Nothing reaches the GPU until all of this has passed.
import { checkWeights, type HostWeights } from '../graph/model';
import { formatBytes, MAX_CHECKPOINT_BYTES, tokenLimitProblem } from '../limits';
import { checkpointFormat, familyOf, type AnyConfig } from '../models/registry';
import { checkFiniteTensor } from './finite';
import { toTimmNames } from './keys';
import { parseSafetensors } from './safetensors';

export interface LoadProgress { stage: 'download' | 'parse' | 'upload'; loaded: number; total?: number }

export interface LoadOptions {
  /** Largest checkpoint accepted, in bytes (default and upper bound: MAX_CHECKPOINT_BYTES). */
  maxBytes?: number;
  /**
   * Loading from a URL: look the files up in the model cache first and keep what was downloaded
   * (default true). False downloads every time and keeps nothing.
   */
  cache?: boolean;
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

export function loadCheckpoint(bytes: ArrayBuffer | Uint8Array, configJson: unknown, onProgress?: (p: LoadProgress) => void, options: LoadOptions = {}): { config: AnyConfig; weights: HostWeights } {
  checkCheckpointSize(bytes.byteLength, options);
  onProgress?.({ stage: 'parse', loaded: 0, total: 1 });
  const file = parseSafetensors(bytes);
  // Files this engine exported carry their config (labels included) in the metadata.
  const json = configJson ?? file.metadata.config;
  const format = checkpointFormat(json, file.names());
  // Each tensor is checked as it is read, under the name the file gives it (Hugging Face's
  // separate query/key/value included), so the message points into the file the user has.
  const weights = toTimmNames({ ...file, get: (name: string) => {
    const data = file.get(name);
    checkFiniteTensor(name, data);
    return data;
  } }, format.keys);
  const config = format.config(json, weights);
  const family = familyOf(config);
  family.validate(config);
  // A model whose own input size is over the limit could load but never classify: refused now.
  const tooMany = tokenLimitProblem(config.imageSize, family.planner(config, 1, config.imageSize).attention);
  if (tooMany) throw new Error(`config: imageSize ${config.imageSize}: ${tooMany}`);
  checkWeights(family.parameterShapes(config), weights);
  onProgress?.({ stage: 'parse', loaded: 1, total: 1 });
  return { config, weights };
}
