// From a checkpoint and a config to a model the engine can upload: read and check the header, find
// the model family, map key names to timm's, merge the config with what the weights show, check
// every shape; then each tensor is read (converted to float32, every value checked finite) when
// its turn to be uploaded comes. A large file is streamed, never held whole: the header first, then
// one tensor at a time from its byte source, so peak host memory is about one tensor.
import { checkWeights, type HostWeights } from '../graph/model';
import { formatBytes, tokenLimitProblem } from '../limits';
import { checkpointFormat, familyOf, type AnyConfig } from '../models/registry';
import { checkFiniteTensor } from './finite';
import { timmRecipes, type TimmRecipes } from './keys';
import { parseSafetensors, readSafetensorsHeader, readTensor, type ByteSource, type SafetensorsEntry } from './safetensors';

export interface LoadProgress { stage: 'download' | 'parse' | 'upload'; loaded: number; total?: number }

export interface LoadOptions {
  /**
   * Largest checkpoint accepted, in bytes (default: no limit of its own; the adapter's buffer
   * limits still apply). A URL over it is refused by its Content-Length, before it downloads.
   */
  maxBytes?: number;
  /**
   * Loading from a URL: look the files up in the model cache first and keep what was downloaded
   * (default true). False downloads every time and keeps nothing.
   */
  cache?: boolean;
}

/** The checkpoint size limit in force: the option, or none. */
export function checkpointLimit(options: LoadOptions = {}): number {
  return options.maxBytes ?? Infinity;
}

/** Throws when a checkpoint of `bytes` bytes is over the caller's limit, before anything reads it. */
export function checkCheckpointSize(bytes: number, options: LoadOptions = {}): void {
  const limit = checkpointLimit(options);
  if (bytes > limit) {
    throw new Error(`checkpoint: ${formatBytes(bytes)} is over the limit of ${formatBytes(limit)} for one checkpoint`);
  }
}

/** A parameter to upload: its shape, the bytes it takes in the file, and its values when asked. */
export interface StreamedTensor { shape: number[]; fileBytes: number; read(): Promise<Float32Array> }

/** A checkpoint whose header, names, config and shapes have passed every check; no tensor read yet. */
export interface OpenedCheckpoint {
  config: AnyConfig;
  /** Every parameter under its timm name; each `read` goes back to the source. */
  tensors: Map<string, StreamedTensor>;
  /** Bytes of the mapped tensors in the file: what a full upload reads (keys the model ignores are never read). */
  dataBytes: number;
}

/** The config and each parameter's recipe, from a header and a JSON config: every check short of the values. */
function prepare(entries: ReadonlyMap<string, SafetensorsEntry>, metadata: Record<string, string>, configJson: unknown): { config: AnyConfig; recipes: TimmRecipes } {
  // Files this engine exported carry their config (labels included) in the metadata.
  const json = configJson ?? metadata.config;
  const format = checkpointFormat(json, [...entries.keys()]);
  const recipes = timmRecipes(entries, format.keys);
  const config = format.config(json, recipes);
  const family = familyOf(config);
  family.validate(config);
  // A model whose own input size is over the limit could load but never classify: refused now.
  const tooMany = tokenLimitProblem(config.imageSize, family.planner(config, 1, config.imageSize).attention);
  if (tooMany) throw new Error(`config: imageSize ${config.imageSize}: ${tooMany}`);
  checkWeights(family.parameterShapes(config), recipes);
  return { config, recipes };
}

/**
 * Each tensor is checked as it is read, under the name the file gives it (Hugging Face's separate
 * query/key/value included), so the message points into the file the user has.
 */
function checked(name: string, data: Float32Array): Float32Array {
  checkFiniteTensor(name, data);
  return data;
}

/** Reads and checks a checkpoint's header from `source`; its tensors are read when uploaded. */
export async function openCheckpoint(source: ByteSource, configJson: unknown, options: LoadOptions = {}): Promise<OpenedCheckpoint> {
  checkCheckpointSize(source.size, options);
  const header = await readSafetensorsHeader(source);
  const { config, recipes } = prepare(header.entries, header.metadata, configJson);
  const bytesOf = (name: string) => header.entries.get(name)!.end - header.entries.get(name)!.begin;
  const tensors = new Map<string, StreamedTensor>();
  for (const [name, r] of recipes) {
    tensors.set(name, {
      shape: r.shape,
      fileBytes: r.from.reduce((n, f) => n + bytesOf(f), 0),
      async read() {
        const parts = new Map<string, Float32Array>();
        for (const f of r.from) parts.set(f, checked(f, await readTensor(source, header, header.entries.get(f)!)));
        return r.build((f) => parts.get(f)!);
      },
    });
  }
  const dataBytes = [...tensors.values()].reduce((n, t) => n + t.fileBytes, 0);
  return { config, tensors, dataBytes };
}

/** A whole checkpoint in memory to host weights (tests, benchmarks, tools): the same checks. */
export function loadCheckpoint(bytes: ArrayBuffer | Uint8Array, configJson: unknown, onProgress?: (p: LoadProgress) => void, options: LoadOptions = {}): { config: AnyConfig; weights: HostWeights } {
  checkCheckpointSize(bytes.byteLength, options);
  onProgress?.({ stage: 'parse', loaded: 0, total: 1 });
  const file = parseSafetensors(bytes);
  const { config, recipes } = prepare(file.entries, file.metadata, configJson);
  const weights: HostWeights = new Map();
  for (const [name, r] of recipes) weights.set(name, { shape: r.shape, data: r.build((f) => checked(f, file.get(f))) });
  onProgress?.({ stage: 'parse', loaded: 1, total: 1 });
  return { config, weights };
}
