// Soak: many classifications and a training run stopped and resumed twice, all in one engine
// worker, then the engine's GPU memory count (Engine.memory) and the worker's JS heap compared with
// where they started. Runs in a page (the soak test, the benchmark's `soak` suite).
//
// The start is taken once the model is loaded and every classification shape the soak uses has
// run once: forward plans are cached per shape (engine.ts, MAX_PLANS), so from then on a
// classification of a known shape allocates nothing that outlives it. Training replaces the model
// with its result and drops the cached plans; running the same warm-up classifications afterwards
// must bring the count back to the start exactly, or something was left behind.
import type { GpuMemory } from '../gpu/buffers';
import type { PresetName } from '../models/registry';
import { PRESETS } from '../models/registry';
import type { TrainProgress, TrainRequest } from '../worker/api';
import { startEngineWorker, type EngineClient } from '../worker/start';

export interface SoakOptions {
  preset: PresetName;
  /** `total` images classified: calls of `batch` random NCHW images, and every `imageEvery`-th call also `imageBatch` random ImageData images. */
  classify: { total: number; batch: number; imageEvery: number; imageBatch: number };
  /**
   * On the bundled Fashion-MNIST: `epochs` (3 or more), stopped at step `stopAtStep` of epochs 2
   * and 3, each time resumed from its checkpoint. The stop reaches the worker during the next step,
   * so it lands after step `stopAtStep` or the one after: an epoch needs 2 batches more than that.
   */
  train: { images: number; holdout: number; batch: number; epochs: number; stopAtStep: number };
}

export interface SoakReport {
  adapter: string;
  /** After the model's first training run and the warm-up classifications. */
  start: GpuMemory;
  afterClassify: GpuMemory;
  /** After each run of the training returned (stopped, stopped, finished): the model alone each time. */
  afterRuns: GpuMemory[];
  /** After training and the same warm-up classifications as at the start. */
  end: GpuMemory;
  /** The worker's JS heap after a garbage collection, in bytes (null where it cannot be measured). */
  heap: { start: number | null; afterClassify: number | null; end: number | null };
  classified: number;
  runs: { stopped: boolean; steps: number; epochs: number[] }[];
  seconds: { classify: number; train: number };
}

/** `soak` in a fresh worker, which it ends. */
export async function soakInWorker(options: SoakOptions, log: (line: string) => void = () => {}): Promise<SoakReport> {
  const engine = startEngineWorker();
  try {
    return await soak(engine, options, log);
  } finally {
    engine.terminate();
  }
}

export async function soak(engine: EngineClient, o: SoakOptions, log: (line: string) => void = () => {}): Promise<SoakReport> {
  const { adapter } = await engine.init();
  const { inChannels: C, imageSize: S } = PRESETS[o.preset];
  const per = C * S * S;
  /** A run of `epochs` on `images`, stopped at step `stopAtStep` of each epoch in `stops` (counted from 0) and resumed from its checkpoint. */
  const trainResumed = async (images: number, epochs: number, stops: number[], onRun: (run: SoakReport['runs'][number]) => Promise<void>) => {
    const settings = { epochs, batch: o.train.batch, trainable: 'all' as const, lr: 1e-3, warmupEpochs: 0, weightDecay: 0, augment: 'none' as const, seed: 1 };
    for (let run = 0; run <= stops.length; run++) {
      const request: TrainRequest = { model: o.preset, dataset: { kind: 'fashion-mnist', train: images, holdout: o.train.holdout }, settings, checkpointKey: `soak-${o.preset}`, resume: run > 0 };
      const seen = new Set<number>();
      const result = await engine.train(request, (p: TrainProgress) => {
        if (p.evalAccuracy !== undefined || p.features) return;
        seen.add(p.epoch);
        if (p.epoch === stops[run] && p.step === o.train.stopAtStep) void engine.stopTraining();
      });
      await onRun({ stopped: result.stopped, steps: result.steps, epochs: [...seen] });
    }
  };

  // The model: the preset trained two epochs of three steps, stopped once and resumed, so every
  // training code path has run (and the worker's heap holds its compiled code) before the start.
  await trainResumed(3 * o.train.batch, 2, [1], async () => {});
  let seed = 0;
  const randomBatch = (n: number) => Float32Array.from({ length: n * per }, () => Math.sin(++seed * 12.9898) * 2);
  const randomImages = (n: number) => Array.from({ length: n }, () => {
    const image = new ImageData(S, S);
    for (let i = 0; i < image.data.length; i++) image.data[i] = i % 4 === 3 ? 255 : (++seed * 7919) % 256;
    return image;
  });
  const classify = async (n: number, images: number) => {
    const results = [...await engine.classifyTensor(randomBatch(n), n, S), ...(images ? await engine.classify(randomImages(images)) : [])];
    const bad = results.findIndex((r) => r.top.length === 0 || !r.top.every((p) => Number.isFinite(p.prob)));
    if (results.length !== n + images || bad >= 0) throw new Error(`soak: ${results.length} results for ${n + images} images (result ${bad} without classes)`);
    return results.length;
  };
  // Every shape the soak classifies: their plans are cached from then on. Three rounds at the
  // start, so the JIT's work on the classification path is mostly done before the heap's start.
  const warmUp = () => classify(o.classify.batch, o.classify.imageBatch);
  for (let round = 0; round < 3; round++) await warmUp();
  const start = await engine.memory();
  const heapStart = await workerHeap(engine);
  log(`soak ${o.preset}: start (model loaded, warm-up classifications run): GPU memory ${describe(start)}; worker JS heap ${mib(heapStart)}`);

  const t0 = performance.now();
  let classified = 0;
  for (let call = 1; classified < o.classify.total; call++) {
    const n = Math.min(o.classify.batch, o.classify.total - classified);
    classified += await classify(n, call % o.classify.imageEvery === 0 ? Math.min(o.classify.imageBatch, o.classify.total - classified - n) : 0);
  }
  const afterClassify = await engine.memory();
  const classifySeconds = (performance.now() - t0) / 1000;
  const heapAfterClassify = await workerHeap(engine);
  log(`soak ${o.preset}: classified ${classified} images in ${classifySeconds.toFixed(1)} s: GPU memory ${describe(afterClassify)} (${change(start, afterClassify)}); worker JS heap ${mib(heapAfterClassify)}${percent(heapStart, heapAfterClassify)}`);

  // Three epochs, stopped at a step of the second and of the third, each time resumed from the
  // checkpoint of the last finished epoch.
  const t1 = performance.now();
  const runs: SoakReport['runs'] = [];
  const afterRuns: GpuMemory[] = [];
  await trainResumed(o.train.images, o.train.epochs, [1, 2], async (run) => {
    runs.push(run);
    afterRuns.push(await engine.memory());
    log(`soak ${o.preset}: training run ${runs.length}: epochs ${run.epochs.map((e) => e + 1).join(', ')}, ${run.steps} steps, ${run.stopped ? 'stopped' : 'finished'}; GPU memory ${describe(afterRuns.at(-1)!)}`);
  });
  const trainSeconds = (performance.now() - t1) / 1000;

  await warmUp();
  const end = await engine.memory();
  const heapEnd = await workerHeap(engine);
  log(`soak ${o.preset}: end (trained ${trainSeconds.toFixed(1)} s, the warm-up classifications again): GPU memory ${describe(end)} (${change(start, end)}); worker JS heap ${mib(heapEnd)}${percent(heapStart, heapEnd)}`);
  return { adapter, start, afterClassify, afterRuns, end, heap: { start: heapStart, afterClassify: heapAfterClassify, end: heapEnd }, classified, runs, seconds: { classify: classifySeconds, train: trainSeconds } };
}

/**
 * The engine worker's JS heap after a full garbage collection in it, from the page: Chromium has
 * no performance.memory in workers, but a cross-origin isolated page's
 * measureUserAgentSpecificMemory attributes memory to each dedicated worker. Null where either is
 * missing (no `gc` exposed, a page that is not cross-origin isolated, another browser).
 */
export async function workerHeap(engine: EngineClient): Promise<number | null> {
  const measure = (performance as Performance & { measureUserAgentSpecificMemory?: () => Promise<MemoryMeasurement> }).measureUserAgentSpecificMemory;
  if (!(await engine.collectGarbage()) || !globalThis.crossOriginIsolated || !measure) return null;
  const { breakdown } = await measure.call(performance);
  let bytes = 0;
  for (const b of breakdown) if (b.attribution.some((a) => a.scope === 'DedicatedWorkerGlobalScope')) bytes += b.bytes;
  return bytes;
}

interface MemoryMeasurement {
  bytes: number;
  breakdown: { bytes: number; types: string[]; attribution: { url: string; scope: string }[] }[];
}

/** The `soak` benchmark suite: DeiT-tiny (its preset, seeded) in a worker of its own; SwiftShader-sized counts. */
export async function runSoakBench(_shared: unknown, log: (line: string) => void): Promise<void> {
  const report = await soakInWorker({
    preset: 'deit-tiny',
    classify: { total: 200, batch: 8, imageEvery: 5, imageBatch: 2 },
    train: { images: 6, holdout: 2, batch: 2, epochs: 3, stopAtStep: 1 },
  }, log);
  log(`adapter: ${report.adapter}`);
}

const describe = (m: GpuMemory) => `${m.bytes} bytes (${(m.bytes / 2 ** 20).toFixed(2)} MiB) in ${m.buffers} buffers`;
const change = (a: GpuMemory, b: GpuMemory) => `${b.bytes - a.bytes >= 0 ? '+' : ''}${b.bytes - a.bytes} bytes, ${b.buffers - a.buffers >= 0 ? '+' : ''}${b.buffers - a.buffers} buffers`;
const percent = (from: number | null, to: number | null) => (from && to ? ` (${to >= from ? '+' : ''}${(100 * (to / from - 1)).toFixed(1)}%)` : '');
const mib = (bytes: number | null) => (bytes === null ? 'not measurable here' : `${(bytes / 2 ** 20).toFixed(2)} MiB`);
