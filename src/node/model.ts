// Models from the file system: a folder as the demo serves one (config.json, model.safetensors and
// the labels file the config names), or a .safetensors file with its config beside it. The
// checkpoint is streamed from disk, a tensor at a time.
import { open, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Engine, ModelInfo } from '../engine/engine';
import { parseJsonText } from '../weights/config';
import type { LoadProgress } from '../weights/load';
import type { ByteSource } from '../weights/source';

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`${what}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

/**
 * A file on disk as a byte source: each read opens it, reads the range and closes it, so the
 * checkpoint is streamed a tensor at a time and no descriptor stays open while the model is loaded
 * (it is read again after a device loss). `opened` is the file's size and modification time when
 * it was chosen: a file that differs at a read has changed, and its bytes are not the same weights.
 */
export function fileSource(path: string, opened: { size: number; mtimeMs: number }): ByteSource {
  const changed = (begin: number, end: number, why: string) =>
    new Error(`checkpoint: ${path} could not be read at bytes ${begin} to ${end} (${why}); it may have been changed, moved or deleted since it was loaded`);
  return {
    size: opened.size,
    async read(begin, end) {
      const file = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
        throw changed(begin, end, e.code ?? String(e));
      });
      try {
        const now = await file.stat();
        if (now.size !== opened.size || now.mtimeMs !== opened.mtimeMs) throw changed(begin, end, 'its size or modification time differ');
        const out = new Uint8Array(end - begin);
        let at = 0;
        while (at < out.byteLength) {
          const { bytesRead } = await file.read(out, at, out.byteLength - at, begin + at);
          if (bytesRead === 0) throw changed(begin, end, `it ended at byte ${begin + at}`);
          at += bytesRead;
        }
        return out;
      } finally {
        await file.close();
      }
    },
  };
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
  let weights: ByteSource;
  try {
    const opened = await stat(weightsPath);
    await (await open(weightsPath, 'r')).close(); // can it be opened at all
    weights = fileSource(weightsPath, opened);
  } catch (e) {
    throw new Error(`model: cannot read ${weightsPath}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const name = typeof config?.architecture === 'string' ? config.architecture : basename(isDir ? path : weightsPath);
  return engine.loadModel(name, weights, config, onProgress);
}
