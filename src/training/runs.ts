// Training runs kept in the browser so that a page can resume one after a reload: what it needs to
// send the same request again (model, settings, class names and, up to a size, the images
// themselves), beside the checkpoint the worker stores under the run's key after every epoch. A run
// is interrupted while its checkpoint exists: a finished run's is deleted by the worker, and a run
// without one (stopped or closed before its first epoch ended) has nothing to resume from.
// DOM-free: IndexedDB, Blobs.
import type { DatasetRequest } from '../engine/trainingData';
import { formatBytes } from '../limits';
import type { TrainRequest } from '../worker/api';
import { checkpointEpoch, request } from './storage';

/**
 * The most a run's images may total to be kept with it. They are copied into the browser's
 * storage when the run starts, beside a checkpoint of tens of megabytes and the kept models, all
 * under one quota; beyond this, the copy costs more storage than asking for the images again.
 */
export const MAX_KEPT_IMAGES_BYTES = 256 * 2 ** 20;

/** One image of a kept run: its bytes when the run's images were kept, and always what identifies it. */
export interface KeptImage { name: string; size: number; blob?: Blob }

export interface KeptRun {
  /** The run's checkpoint key, one per run. */
  key: string;
  /** The page that started it. */
  page: string;
  /** The model it started from, for the page to name. */
  baseName: string;
  /** Milliseconds since the epoch. */
  startedAt: number;
  /** Whether the images' bytes are kept (else only their names and sizes). */
  imagesKept: boolean;
  request: Omit<TrainRequest, 'dataset' | 'resume'> & { dataset: DatasetRequest<KeptImage> };
}

/** A kept run with a checkpoint to resume from. */
export interface InterruptedRun extends KeptRun { epochsDone: number }

const imagesOf = (run: KeptRun) => (run.request.dataset.kind === 'images' ? run.request.dataset.classes.flatMap((c) => c.images) : []);

function withoutBlobs(run: KeptRun): KeptRun {
  const ds = run.request.dataset;
  if (ds.kind !== 'images') return run;
  const classes = ds.classes.map((c) => ({ name: c.name, images: c.images.map(({ name, size }) => ({ name, size })) }));
  return { ...run, imagesKept: false, request: { ...run.request, dataset: { ...ds, classes } } };
}

function put(run: KeptRun): Promise<void> {
  return request('runs', 'readwrite', (s) => s.put(run, run.key)).then(() => undefined);
}

/** Every kept run, newest first. */
async function listRuns(): Promise<KeptRun[]> {
  const all = await request<KeptRun[]>('runs', 'readonly', (s) => s.getAll() as IDBRequest<KeptRun[]>);
  return all.sort((a, b) => b.startedAt - a.startedAt);
}

/** Deletes a run and its checkpoint. */
export function forgetRun(key: string): Promise<void> {
  return request('runs', 'readwrite', (s) => {
    s.transaction.objectStore('checkpoints').delete(key);
    return s.delete(key);
  }, ['checkpoints']).then(() => undefined);
}

/**
 * Keeps a run that starts now, replacing the page's earlier runs (and their checkpoints). Its
 * images are kept when they total at most `capBytes`, else their names and sizes only; when the
 * storage refuses the images, it is tried without them. Returns what was kept and, when less than
 * asked, why; rejects when nothing could be kept (the run still trains: only a reload loses it).
 */
export async function keepRun(run: KeptRun, capBytes = MAX_KEPT_IMAGES_BYTES): Promise<{ run: KeptRun; warning?: string }> {
  for (const old of await listRuns()) if (old.page === run.page) await forgetRun(old.key);
  const bytes = imagesOf(run).reduce((sum, i) => sum + i.size, 0);
  if (bytes > capBytes) {
    const lean = withoutBlobs(run);
    await put(lean);
    return { run: lean, warning: `its images take ${formatBytes(bytes)}, over the ${formatBytes(capBytes)} kept in this browser` };
  }
  try {
    await put(run);
    return { run };
  } catch (e) {
    if (!run.imagesKept) throw e;
    const lean = withoutBlobs(run);
    await put(lean);
    return { run: lean, warning: `its images could not be kept (${e instanceof Error ? e.message : String(e)})` };
  }
}

/**
 * The page's newest run with a checkpoint to resume from, or null. Runs without one are deleted on
 * the way: they finished, or never finished an epoch.
 */
export async function interruptedRun(page: string): Promise<InterruptedRun | null> {
  for (const run of await listRuns()) {
    if (run.page !== page) continue;
    const epochsDone = await checkpointEpoch(run.key);
    if (epochsDone === null) await forgetRun(run.key);
    else return { ...run, epochsDone };
  }
  return null;
}

/** Deletes the run unless it has a checkpoint to resume from (it finished, or never finished an epoch). */
export async function forgetUnlessResumable(key: string): Promise<void> {
  if ((await checkpointEpoch(key)) === null) await forgetRun(key);
}

/**
 * The request that continues `run`. Its images come from the run itself when they were kept,
 * else from `given` (the same classes, images added again): each class's images must match the
 * run's by name and size, and are sent in the run's order, so the run goes on as it started.
 * A mismatch is refused, naming the first one found.
 */
export function resumeRequest(run: KeptRun, given?: { name: string; images: { name: string; blob: Blob }[] }[]): TrainRequest {
  const ds = run.request.dataset;
  if (ds.kind !== 'images') return { ...run.request, dataset: ds, resume: true };
  const classes = ds.classes.map((c) => {
    if (run.imagesKept) return { name: c.name, images: c.images.map((i) => i.blob!) };
    const mine = given?.find((g) => g.name === c.name);
    if (!mine) throw new Error(`the run needs its class "${c.name}" again`);
    const pool = [...mine.images];
    const images = c.images.map((want) => {
      const at = pool.findIndex((g) => g.name === want.name && g.blob.size === want.size);
      if (at < 0) throw new Error(`class "${c.name}" needs ${want.name} (${want.size} bytes) again`);
      return pool.splice(at, 1)[0]!.blob;
    });
    if (pool.length) throw new Error(`class "${c.name}": ${pool[0]!.name} was not in the run`);
    return { name: c.name, images };
  });
  const extra = given?.find((g) => !ds.classes.some((c) => c.name === g.name) && g.images.length);
  if (!run.imagesKept && extra) throw new Error(`class "${extra.name}" was not in the run`);
  return { ...run.request, dataset: { ...ds, classes }, resume: true };
}
