// The page behind the command-line scripts: it runs the engine in its Web Worker, exactly as the
// demo does, and exposes a few calls that scripts/classify.js drives through Playwright.
import { FASHION_MNIST_CLASSES, type IdxSelection } from '../data/idx';
import type { IdxSplit, TrainRequest } from '../worker/api';
import { loadCheckpointBytes, saveCheckpoint } from '../training/storage';
import { attributeLoadError } from '../weights/attribute';
import { parseSafetensors } from '../weights/safetensors';
import { startEngineWorker } from '../worker/start';
import { answer, tensorInput, type CliOutput, type CliRequest } from './output';

export type { CliOutput } from './output';

const engine = startEngineWorker();

// Each run has a fresh browser profile: keeping the model in its cache would only cost the writing.
const NO_CACHE = { cache: false };

const MIME: Record<string, string> = { png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', webp: 'image/webp', gif: 'image/gif', bmp: 'image/bmp' };

function bytesOf(base64: string): Uint8Array {
  const bin = atob(base64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function base64Of(bytes: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Where the script serves the user's model: model.safetensors and config.json under `url`, named as the user gave them. */
export interface CliModel { url: string; checkpoint: string; config: string }

const cli = {
  /**
   * Starts the engine and loads the user's model (the embedded DeiT-tiny without one). A model
   * that fails to load comes back as one message naming the file at fault, not as a throw: the
   * script prints it as it is.
   */
  async init(model?: CliModel): Promise<{ adapter: string } | { error: string }> {
    try {
      const { adapter } = await engine.init();
      if (model) {
        try {
          await engine.loadModelFromUrl(model.url, undefined, NO_CACHE);
        } catch (e) {
          return { error: attributeLoadError(message(e), model) };
        }
      } else {
        await engine.loadModelFromUrl('/models/deit-tiny/', undefined, NO_CACHE);
      }
      return { adapter };
    } catch (e) {
      return { error: message(e) };
    }
  },

  /**
   * Files served by the script at `url`, or the reason the script cannot read one (passed through
   * so the output keeps input order). Images are classified together; a `.safetensors` holds an
   * `input` tensor (N, C, H, W).
   */
  async classify(files: ({ name: string; url: string } | { name: string; error: string })[], request: CliRequest): Promise<CliOutput[]> {
    const perFile: CliOutput[][] = files.map(() => []);
    const images: { at: number; file: File }[] = [];
    for (const [at, f] of files.entries()) {
      if ('error' in f) {
        perFile[at] = [{ file: f.name, error: f.error }];
        continue;
      }
      let bytes: ArrayBuffer;
      try {
        const res = await fetch(f.url);
        if (!res.ok) throw new Error(`cannot read ${f.name} (HTTP ${res.status})`);
        bytes = await res.arrayBuffer();
      } catch (e) {
        perFile[at] = [{ file: f.name, error: message(e) }];
        continue;
      }
      if (!f.name.toLowerCase().endsWith('.safetensors')) {
        const ext = f.name.split('.').pop()?.toLowerCase() ?? '';
        images.push({ at, file: new File([bytes], f.name, { type: MIME[ext] ?? '' }) });
        continue;
      }
      try {
        perFile[at] = await answer(engine, request, tensorInput(parseSafetensors(bytes)), () => f.name);
      } catch (e) {
        perFile[at] = [{ file: f.name, error: message(e) }];
      }
    }
    if (images.length) {
      try {
        const results = await answer(engine, request, { images: images.map((i) => i.file) }, (i) => images[i]!.file.name);
        results.forEach((r, i) => (perFile[images[i]!.at] = [r]));
      } catch {
        // One bad file fails the batch: redo one by one so every other file still gets its answer.
        for (const { at, file } of images) {
          try {
            perFile[at] = await answer(engine, request, { images: [file] }, () => file.name);
          } catch (e) {
            perFile[at] = [{ file: file.name, error: message(e) }];
          }
        }
      }
    }
    return perFile.flat();
  },
};

/** One line per epoch for scripts/train.js, through a function it exposes on the page. */
export interface EpochReport { epoch: number; loss: number; accuracy: number; evalAccuracy: number; imagesPerSecond: number; seconds: number; adapter: string; warning?: string }

/** Images by class folder, as base64 files. */
export interface FilesDataset { kind: 'files'; classes: { name: string; files: { name: string; base64: string }[] }[] }
/** IDX files as base64; class names default to Fashion-MNIST's. */
export interface IdxFilesSplit extends IdxSelection { images: string; labels: string }
export interface IdxFilesDataset { kind: 'idx-files'; classes?: string[]; train: IdxFilesSplit; holdout: IdxFilesSplit }

/** The browser-storage key of the script's run; the profile is fresh each time, so one key serves. */
const CHECKPOINT_KEY = 'cli-run';

const training = {
  /**
   * Trains (from a preset, or fine-tuning the embedded DeiT-tiny) and returns the model as
   * base64 safetensors. Image datasets arrive as base64 files by class. With `checkpoints`, each
   * epoch's checkpoint goes to `window.saveCheckpointFile`; `resume` (base64 checkpoint bytes)
   * continues the run it came from.
   */
  async train(request: Omit<TrainRequest, 'dataset'> & { dataset: TrainRequest['dataset'] | FilesDataset | IdxFilesDataset }, fineTune: boolean, checkpoints = false, resume?: string): Promise<{ model: string; evalAccuracy: number }> {
    const { adapter } = await engine.init();
    if (resume) await saveCheckpoint(CHECKPOINT_KEY, bytesOf(resume));
    if (fineTune) await engine.loadModelFromUrl('/models/deit-tiny/', undefined, NO_CACHE);
    const ds = request.dataset;
    const idxSplit = ({ images, labels, ...selection }: IdxFilesSplit): IdxSplit => ({ ...selection, images: bytesOf(images).buffer as ArrayBuffer, labels: bytesOf(labels).buffer as ArrayBuffer });
    const dataset: TrainRequest['dataset'] = ds.kind === 'files'
      ? { kind: 'images', classes: ds.classes.map((c) => ({ name: c.name, images: c.files.map((f) => new File([bytesOf(f.base64) as BlobPart], f.name)) })) }
      : ds.kind === 'idx-files' ? { kind: 'idx', classes: ds.classes ?? FASHION_MNIST_CLASSES, train: idxSplit(ds.train), holdout: idxSplit(ds.holdout) } : ds;
    const t0 = performance.now();
    const losses: number[] = [];
    const accuracies: number[] = [];
    const keep = checkpoints || !!resume;
    let recovered: string | undefined;
    const result = await engine.train({ ...request, dataset, ...(keep && { checkpointKey: CHECKPOINT_KEY, resume: !!resume }) }, async (p) => {
      if (p.features) return; // the head-only run computing its features, before any step
      if (p.recovered) {
        // The epoch runs again from its start: its report says so.
        recovered = p.recovered.message;
        losses.length = 0;
        accuracies.length = 0;
        return;
      }
      if (p.evalAccuracy === undefined) {
        losses.push(p.loss);
        accuracies.push(p.accuracy);
        return;
      }
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
      const warning = [recovered, p.warning].filter(Boolean).join('; ');
      window.reportEpoch?.({ epoch: p.epoch + 1, loss: mean(losses), accuracy: mean(accuracies), evalAccuracy: p.evalAccuracy, imagesPerSecond: p.imagesPerSecond, seconds: (performance.now() - t0) / 1000, adapter, ...(warning && { warning }) });
      recovered = undefined;
      losses.length = 0;
      accuracies.length = 0;
      // The worker stored this epoch's checkpoint before reporting it. After the last epoch it
      // deletes it (the run is done), so that one may be gone: the model file stands for it.
      if (checkpoints && p.epoch + 1 < p.epochs) {
        const bytes = await loadCheckpointBytes(CHECKPOINT_KEY);
        if (bytes) await window.saveCheckpointFile?.(base64Of(bytes), p.epoch + 1);
      }
    });
    return { model: base64Of(new Uint8Array(await engine.exportModel())), evalAccuracy: result.evalAccuracy };
  },
};

declare global {
  interface Window {
    cli?: typeof cli;
    training?: typeof training;
    reportEpoch?: (r: EpochReport) => void;
    saveCheckpointFile?: (base64: string, epoch: number) => Promise<void>;
  }
}
window.training = training;
window.cli = cli;
