// Head-only training (a linear probe) from cached features: the frozen backbone runs once over the
// training and held-out images, what the head reads stays on the GPU, and every step and every
// evaluation after that runs the head alone. Same Trainer, AdamW, gradients and checkpoints as
// training through the whole model; only the step's plan differs (src/graph/probe.ts).
import { readTensor } from '../gpu/tensor';
import { planForward } from '../graph/forward';
import { createFeatureCache, planProbe, type FeatureCache, type ProbePlan } from '../graph/probe';
import type { Model } from '../graph/model';
import { countCorrect } from '../training/accuracy';
import { DEFAULT_SMOOTHING, Trainer, type TrainerOptions } from '../training/trainer';
import { forEachBatch, type Dataset } from './dataset';

type Cache = FeatureCache & { destroy(): void };

export class LinearProbe {
  private constructor(
    readonly trainer: Trainer<Int32Array>,
    private readonly plan: ProbePlan,
    private readonly data: { train: Dataset; holdout: Dataset },
    private readonly caches: { train: Cache; holdout: Cache },
  ) {}

  /** Plans the head-only step; the caches stay empty until `computeFeatures`. */
  static async create(model: Model, name: string, data: { train: Dataset; holdout: Dataset }, options: TrainerOptions): Promise<LinearProbe> {
    const train = createFeatureCache(model, data.train.count, 'training features');
    let holdout: Cache | undefined;
    try {
      holdout = createFeatureCache(model, data.holdout.count, 'held-out features');
      const caches = { train, holdout };
      const plan = await planProbe(model, { batch: options.batch, cache: caches.train, smoothing: options.smoothing ?? DEFAULT_SMOOTHING, softTargets: options.softTargets, microBatches: options.accumulation });
      return new LinearProbe(await Trainer.forPlan(model, name, { ...options, trainable: 'head' }, plan), plan, data, caches);
    } catch (e) {
      train.destroy();
      holdout?.destroy();
      throw e;
    }
  }

  /**
   * Runs the backbone over both splits; after a restore, so the features are the checkpoint's
   * backbone's. `onImages` hears how many of all the images are done, after every batch.
   */
  async computeFeatures(onImages?: (done: number, total: number) => void): Promise<void> {
    const { model, options } = this.trainer;
    const { train, holdout } = this.data;
    const total = train.count + holdout.count;
    await fillFeatures(model, train, this.caches.train, options.batch, (n) => onImages?.(n, total));
    await fillFeatures(model, holdout, this.caches.holdout, options.batch, (n) => onImages?.(train.count + n, total));
  }

  /** Accuracy of the current head on the held-out features. */
  async evaluate(): Promise<number> {
    const { holdout } = this.data;
    if (holdout.count === 0) return Number.NaN;
    const { gpu, config } = this.trainer.model;
    const B = this.trainer.options.batch;
    let correct = 0;
    for (let start = 0; start < holdout.count; start += B) {
      this.plan.predict(this.caches.holdout, start);
      const n = Math.min(B, holdout.count - start);
      correct += countCorrect(await readTensor(gpu, this.plan.logits), config.numClasses, holdout.labels.subarray(start, start + n), n);
    }
    return correct / holdout.count;
  }

  destroy(): void {
    this.trainer.destroy();
    this.caches.train.destroy();
    this.caches.holdout.destroy();
  }
}

/** The inference forward pass over `data` in batches, each batch's head input copied into `cache`. */
async function fillFeatures(model: Model, data: Dataset, cache: Cache, batch: number, onImages: (done: number) => void): Promise<void> {
  if (data.count === 0) return;
  const { gpu } = model;
  const rowBytes = cache.width * 4;
  const plan = await planForward(model, { batch: Math.min(batch, data.count) });
  try {
    await forEachBatch(plan, data, async (start, n) => {
      const encoder = gpu.device.createCommandEncoder({ label: 'cache features' });
      plan.neck!.features.forEach((f, h) => encoder.copyBufferToBuffer(f.buffer, f.offset, cache.features[h]!, start * rowBytes, n * rowBytes));
      gpu.device.queue.submit([encoder.finish()]);
      await gpu.device.queue.onSubmittedWorkDone(); // one batch's upload in flight at a time
      onImages(start + n);
    });
  } finally {
    plan.destroy();
  }
}
