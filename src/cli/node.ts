// The command-line scripts' --node mode: the engine in this process on Dawn, no browser. The same
// calls as page.ts offers the scripts in Chromium, with files read from disk instead of served.
import { readFile } from 'node:fs/promises';
import type { Engine } from '../engine/engine';
import type { Pixels } from '../image/preprocess';
import { createEngine, loadModelFromPath, readImage } from '../node';
import { attributeLoadError } from '../weights/attribute';
import { parseSafetensors } from '../weights/safetensors';
import { output, type CliOutput } from './output';
import type { CliModel } from './page';

const EMBEDDED_MODEL = new URL('../../public/models/deit-tiny/', import.meta.url).pathname;

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Starts the engine and loads the user's model (the embedded DeiT-tiny without one), or says why not in one message. */
export async function init(model?: Omit<CliModel, 'url'>): Promise<{ engine: Engine; adapter: string } | { error: string }> {
  let engine: Engine;
  try {
    engine = await createEngine();
  } catch (e) {
    return { error: message(e) };
  }
  try {
    await loadModelFromPath(engine, model?.checkpoint ?? EMBEDDED_MODEL);
  } catch (e) {
    engine.destroy();
    return { error: model ? attributeLoadError(message(e), model) : message(e) };
  }
  return { engine, adapter: engine.adapter };
}

/**
 * Classifies files (or the reason the script cannot read one, passed through so the output keeps
 * input order): images together, a `.safetensors` file's `input` tensor (N, C, S, S) on its own.
 */
export async function classify(engine: Engine, files: ({ name: string; path: string } | { name: string; error: string })[], topK: number, withLogits: boolean): Promise<CliOutput[]> {
  const perFile: CliOutput[][] = files.map(() => []);
  const images: { at: number; name: string; pixels: Pixels }[] = [];
  for (const [at, f] of files.entries()) {
    if ('error' in f) {
      perFile[at] = [{ file: f.name, error: f.error }];
      continue;
    }
    try {
      if (!f.name.toLowerCase().endsWith('.safetensors')) {
        images.push({ at, name: f.name, pixels: await readImage(f.path) });
        continue;
      }
      const st = parseSafetensors(await readFile(f.path));
      const entry = st.entries.get('input');
      if (!entry) throw new Error('no tensor named "input" in it');
      if (entry.shape.length !== 4 || entry.shape[2] !== entry.shape[3]) throw new Error(`input has shape [${entry.shape.join(', ')}], expected (N, C, S, S)`);
      const results = await engine.classifyTensor(st.get('input'), entry.shape[0]!, entry.shape[2]!, { topK, logits: withLogits });
      perFile[at] = results.map((r, i) => output(f.name, r, withLogits, i));
    } catch (e) {
      perFile[at] = [{ file: f.name, error: message(e) }];
    }
  }
  if (images.length) {
    try {
      const results = await engine.classifyImages(images.map((i) => i.pixels), { topK, logits: withLogits });
      results.forEach((r, i) => (perFile[images[i]!.at] = [output(images[i]!.name, r, withLogits)]));
    } catch {
      // One bad image fails the batch: redo one by one so every other file still gets its answer.
      for (const { at, name, pixels } of images) {
        try {
          const [r] = await engine.classifyImages([pixels], { topK, logits: withLogits });
          perFile[at] = [output(name, r!, withLogits)];
        } catch (e) {
          perFile[at] = [{ file: name, error: message(e) }];
        }
      }
    }
  }
  return perFile.flat();
}
