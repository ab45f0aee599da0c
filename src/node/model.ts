// Models from the file system: a folder as the demo serves one (config.json, model.safetensors and
// the labels file the config names), or a .safetensors file with its config beside it.
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Engine, ModelInfo } from '../engine/engine';
import { parseJsonText } from '../weights/config';
import type { LoadProgress } from '../weights/load';

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`${what}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

/**
 * Loads a model into `engine` from `path`: a folder holding config.json and model.safetensors (and
 * the config's labelsFile), or FILE.safetensors with FILE.json beside it (or none, for a file
 * this engine exported, whose config travels in its metadata).
 */
export async function loadModelFromPath(engine: Engine, path: string, onProgress?: (p: LoadProgress) => void): Promise<ModelInfo> {
  let isDir: boolean;
  try {
    isDir = (await stat(path)).isDirectory();
  } catch (e) {
    throw new Error(`model: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const weightsPath = isDir ? join(path, 'model.safetensors') : path;
  if (!isDir && !path.endsWith('.safetensors')) throw new Error(`model: ${path} is neither a folder nor a .safetensors file`);
  const configPath = isDir ? join(path, 'config.json') : path.replace(/\.safetensors$/, '.json');
  let config: Record<string, unknown> | undefined;
  try {
    await stat(configPath);
    config = parseJsonText(await readText(configPath, 'config'));
  } catch (e) {
    if (isDir || (e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (config && typeof config.labelsFile === 'string') {
    const labelsPath = join(dirname(configPath), config.labelsFile);
    try {
      config.labels = JSON.parse(await readText(labelsPath, 'config'));
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      throw new Error(message.startsWith('config: ') ? message : `config: its labelsFile ${config.labelsFile} is not valid JSON (${message})`);
    }
  }
  let weights: Uint8Array;
  try {
    weights = await readFile(weightsPath);
  } catch (e) {
    throw new Error(`model: cannot read ${weightsPath}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const name = typeof config?.architecture === 'string' ? config.architecture : basename(isDir ? path : weightsPath);
  return engine.loadModel(name, weights, config, onProgress);
}
