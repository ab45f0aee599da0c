// The linear probe's training step: the classifier head(s) alone, on features the frozen backbone
// computed once. A step gathers its batch's rows from the feature cache (buffer copies in the same
// command buffer), runs the heads, the loss and the heads' gradients: the same layers, gradient
// names and arena layout as planTraining with trainable 'head', without a backbone pass.
// Legend: N cached examples, B batch, F feature width, K classes.
import { createBuffer } from '../gpu/buffers';
import { submit } from '../gpu/dispatch';
import { limitName, writeTensor, type Tensor } from '../gpu/tensor';
import { formatBytes, formatCount } from '../limits';
import { classifierBackward, classifierForward, type Targets } from './layers/classifier';
import type { Model } from './model';
import { PlanBuilder } from './plan';
import { createGradArena, trainableNames } from './training';

/** What the heads read, for N examples: per head, rows of F floats in a copy-source buffer (never bound). */
export interface FeatureCache {
  readonly count: number;
  /** Floats per row. */
  readonly width: number;
  /** One buffer per classifier head, in classifierHeads order. */
  readonly features: readonly GPUBuffer[];
}

export interface ProbePlanOptions {
  batch: number;
  /** The training examples' features; `run` picks its rows from here. */
  cache: FeatureCache;
  smoothing?: number;
  softTargets?: boolean;
  /** Micro-batches accumulated into one optimizer step (see TrainingPlanOptions). */
  microBatches?: number;
}

export interface ProbePlan {
  readonly trainable: readonly string[];
  readonly grads: ReadonlyMap<string, Tensor>;
  readonly gradsFlat: Tensor;
  /** [B, F] per head. */
  readonly features: readonly Tensor[];
  readonly logits: Tensor;   // [B, K]
  /** [B] per head. */
  readonly losses: readonly Tensor[];
  readonly bytes: number;
  /** A training step on cache rows `rows` [B]; targets and `zeroGrads` as in TrainingPlan.run. */
  run(rows: Int32Array, targets: Float32Array, options?: { zeroGrads?: boolean }): void;
  /** Logits alone for rows [start, start + B) of `cache` (fewer at its end; the rest stale). */
  predict(cache: FeatureCache, start: number): void;
  destroy(): void;
}

/** An empty cache of `count` rows for each of `model`'s heads (filled by whoever computes them). */
export function createFeatureCache(model: Model, count: number, label: string): FeatureCache & { destroy(): void } {
  const { gpu } = model;
  // What a head reads is as wide as its weight's rows.
  const width = model.param(`${model.family.classifierHeads(model.config)[0]}.weight`).shape[1]!;
  const bytes = Math.max(4, count * width * 4);
  if (bytes > gpu.bufferLimits.maxBufferSize) throw new Error(`${label}: ${formatCount(count)} x ${width} features (${formatBytes(bytes)}) exceed ${limitName(gpu, 'maxBufferSize')}`);
  const features = model.family.classifierHeads(model.config).map((h) =>
    createBuffer(gpu, { label: `${label} ${h}`, size: bytes, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST }));
  return {
    count, width, features,
    destroy() {
      for (const f of features) f.destroy();
    },
  };
}

export async function planProbe(model: Model, opts: ProbePlanOptions): Promise<ProbePlan> {
  const { gpu, family, config: c } = model;
  const { batch: B, cache } = opts;
  if (!Number.isInteger(B) || B <= 0) throw new Error(`probe: batch must be a positive integer, got ${B}`);
  const heads = family.classifierHeads(c);
  if (cache.features.length !== heads.length) throw new Error(`probe: the cache has features for ${cache.features.length} heads; this model has ${heads.length}`);
  const trainable = trainableNames(family, c, 'head');
  const arena = createGradArena(model, trainable);
  const b = new PlanBuilder(model, `probe B=${B}`);
  b.grads = arena.grads;
  const features = heads.map((h) => b.tensor([B, cache.width], `${h} features`));
  const targets = b.tensor(opts.softTargets ? [B, c.numClasses] : [B], 'targets');
  const target: Targets = opts.softTargets ? { soft: targets } : { labels: targets, smoothing: opts.smoothing ?? 0 };
  const losses = heads.map((h) => b.tensor([B], `${h} loss`));
  let forward, step, classifier;
  try {
    classifier = classifierForward(b, heads, features, c.numClasses);
    forward = await b.dispatches();
    classifierBackward(b, heads, classifier, { targets: target, losses, microBatches: opts.microBatches });
    step = await b.finish();
  } catch (e) {
    await b.abandon();
    arena.gradsFlat.buffer.destroy();
    throw e;
  }
  const rowBytes = cache.width * 4;

  /** Copies cache rows into the batch's feature tensors: one copy per run of consecutive rows. */
  const gather = (encoder: GPUCommandEncoder, from: FeatureCache, rows: ArrayLike<number>, n: number) => {
    for (let i = 0; i < n;) {
      let run = 1;
      while (i + run < n && rows[i + run] === rows[i]! + run) run++;
      from.features.forEach((f, h) => encoder.copyBufferToBuffer(f, rows[i]! * rowBytes, features[h]!.buffer, i * rowBytes, run * rowBytes));
      i += run;
    }
  };

  return {
    trainable, grads: arena.grads, gradsFlat: arena.gradsFlat, features, logits: classifier.logits, losses, bytes: arena.bytes + b.bytes,
    run(rows, targetValues, options = {}) {
      if (rows.length !== B) throw new Error(`probe: ${rows.length} rows for a batch of ${B}`);
      const bad = rows.findIndex((r) => !(r >= 0 && r < cache.count));
      if (bad >= 0) throw new Error(`probe: row ${rows[bad]} of example ${bad} is outside the cache [0, ${cache.count})`);
      writeTensor(gpu, targets, targetValues);
      submit(gpu, step, 'probe step', (encoder) => {
        gather(encoder, cache, rows, B);
        if (options.zeroGrads ?? true) encoder.clearBuffer(arena.gradsFlat.buffer);
      });
    },
    predict(from, start) {
      const n = Math.min(B, from.count - start);
      if (!Number.isInteger(start) || start < 0 || n <= 0) throw new Error(`probe: start ${start} is outside the cache [0, ${from.count})`);
      submit(gpu, forward, 'probe predict', (encoder) => gather(encoder, from, Array.from({ length: n }, (_, i) => start + i), n));
    },
    destroy() {
      for (const d of step) d.destroy();
      arena.gradsFlat.buffer.destroy();
      b.destroyTensors();
    },
  };
}
