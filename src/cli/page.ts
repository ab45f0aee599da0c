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

/** A file the script serves at `url` (named `name` in messages). */
async function fetched(url: string, name = decodeURIComponent(url.split('/').pop() ?? url)): Promise<Response> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`cannot read ${name} (HTTP ${res.status})`);
  return res;
}

/** Sends a file's bytes back to the script, which writes them where it was told to (chromium.js `receive`). */
async function sendBack(url: string, bytes: ArrayBuffer | Uint8Array): Promise<void> {
  const res = await fetch(url, { method: 'PUT', body: bytes as BodyInit });
  if (!res.ok) throw new Error(await res.text());
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
        bytes = await (await fetched(f.url, f.name)).arrayBuffer();
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

/**
 * Images by class folder. Each `file` (here and in IdxFilesSplit) is where the file is: a URL the
 * script serves for the page, a path on disk for --node.
 */
export interface FilesDataset { kind: 'files'; classes: { name: string; files: { name: string; file: string }[] }[] }
/** IDX files; class names default to Fashion-MNIST's. */
export interface IdxFilesSplit extends IdxSelection { images: string; labels: string }
export interface IdxFilesDataset { kind: 'idx-files'; classes?: string[]; train: IdxFilesSplit; holdout: IdxFilesSplit }

/** The browser-storage key of the script's run; the profile is fresh each time, so one key serves. */
const CHECKPOINT_KEY = 'cli-run';

const training = {
  /**
   * Trains (from a preset, or fine-tuning the embedded DeiT-tiny) and sends the model back as
   * safetensors to /__cli/out/model.safetensors. Datasets' files are fetched from the URLs the
   * script serves them at. With `checkpoints`, each epoch's checkpoint is sent back to
   * /__cli/out/checkpoint?epoch=N; `resume` (the URL of a checkpoint) continues the run it came from.
   */
  async train(request: Omit<TrainRequest, 'dataset'> & { dataset: TrainRequest['dataset'] | FilesDataset | IdxFilesDataset }, fineTune: boolean, checkpoints = false, resume?: string): Promise<{ evalAccuracy: number }> {
    const { adapter } = await engine.init();
    if (resume) await saveCheckpoint(CHECKPOINT_KEY, new Uint8Array(await (await fetched(resume)).arrayBuffer()));
    if (fineTune) await engine.loadModelFromUrl('/models/deit-tiny/', undefined, NO_CACHE);
    const ds = request.dataset;
    const bytes = async (url: string) => (await fetched(url)).arrayBuffer();
    const idxSplit = async ({ images, labels, ...selection }: IdxFilesSplit): Promise<IdxSplit> => ({ ...selection, images: await bytes(images), labels: await bytes(labels) });
    const dataset: TrainRequest['dataset'] = ds.kind === 'files'
      ? { kind: 'images', classes: await Promise.all(ds.classes.map(async (c) => ({ name: c.name, images: await Promise.all(c.files.map(async (f) => new File([await (await fetched(f.file, f.name)).blob()], f.name))) }))) }
      : ds.kind === 'idx-files' ? { kind: 'idx', classes: ds.classes ?? FASHION_MNIST_CLASSES, train: await idxSplit(ds.train), holdout: await idxSplit(ds.holdout) } : ds;
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
        if (bytes) await sendBack(`/__cli/out/checkpoint?epoch=${p.epoch + 1}`, bytes);
      }
    });
    await sendBack('/__cli/out/model.safetensors', await engine.exportModel());
    return { evalAccuracy: result.evalAccuracy };
  },
};

declare global {
  interface Window {
    cli?: typeof cli;
    training?: typeof training;
    reportEpoch?: (r: EpochReport) => void;
  }
}
window.training = training;
window.cli = cli;
