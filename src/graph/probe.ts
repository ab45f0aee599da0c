// The linear probe's training step: the classifier head(s) alone, on features the frozen backbone
// computed once. A step gathers its batch's rows from the feature cache (buffer copies in the same
// command buffer), runs the head, the loss and the head gradients: the same kernels, gradient
// names and arena layout as planTraining with trainable 'head', without a backbone pass.
// Legend: N cached examples, B batch, D width, K classes.
import { submit } from '../gpu/dispatch';
import { createTensors, writeTensor, type Tensor } from '../gpu/tensor';
import type { ViT } from '../models/vit';
import { createGradArena, planHeadsBackward, trainableNames, type HeadStep } from './backward';
import { planHeads } from './forward';

/** What the head reads, for N examples: rows of D floats, plain copy-source buffers (never bound). */
export interface FeatureCache {
  readonly count: number;
  readonly features: GPUBuffer;       // [N, D] the cls token's (or pooled) features
  readonly featuresDist?: GPUBuffer;  // [N, D] the dist token's, for DeiT-distilled
}

export interface ProbePlanOptions {
  batch: number;
  /** The training examples' features; `run` picks its rows from here. */
  cache: FeatureCache;
  smoothing?: number;
  softTargets?: boolean;
}

export interface ProbePlan {
  readonly trainable: readonly string[];
  readonly grads: ReadonlyMap<string, Tensor>;
  readonly gradsFlat: Tensor;
  readonly features: Tensor;      // [B, D]
  readonly featuresDist?: Tensor; // [B, D]
  readonly logits: Tensor;        // [B, K]
  readonly loss: Tensor;          // [B]
  readonly lossDist?: Tensor;     // [B]
  readonly bytes: number;
  /** A training step on cache rows `rows` [B]; targets and `zeroGrads` as in TrainingPlan.run. */
  run(rows: Int32Array, targets: Float32Array, options?: { zeroGrads?: boolean }): void;
  /** Logits alone for rows [start, start + B) of `cache` (fewer at its end; the rest stale). */
  predict(cache: FeatureCache, start: number): void;
  destroy(): void;
}

/** An empty cache of `count` rows for `model` (the features are copied in by whoever computes them). */
export function createFeatureCache(model: ViT, count: number, label: string): FeatureCache & { destroy(): void } {
  const { gpu, config: c } = model;
  const bytes = Math.max(4, count * c.dim * 4);
  if (bytes > gpu.device.limits.maxBufferSize) throw new Error(`${label}: ${count} x ${c.dim} features (${bytes} bytes) exceed the adapter's maxBufferSize (${gpu.device.limits.maxBufferSize})`);
  const buffer = (name: string) => gpu.device.createBuffer({ label: `${label} ${name}`, size: bytes, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  const features = buffer('features');
  const featuresDist = c.tokens === 'cls+dist' ? buffer('features dist') : undefined;
  return {
    count, features, featuresDist,
    destroy() {
      features.destroy();
      featuresDist?.destroy();
    },
  };
}

export async function planProbe(model: ViT, opts: ProbePlanOptions): Promise<ProbePlan> {
  const { gpu, config: c } = model;
  const { batch: B, cache } = opts;
  const { dim: D, numClasses: K } = c;
  const distilled = c.tokens === 'cls+dist';
  if (!Number.isInteger(B) || B <= 0) throw new Error(`probe: batch must be a positive integer, got ${B}`);
  if (distilled !== !!cache.featuresDist) throw new Error(`probe: the cache ${distilled ? 'lacks' : 'has'} dist-token features for this ${distilled ? '' : 'un'}distilled model`);
  const trainable = trainableNames(model, 'head');
  const arena = createGradArena(model, trainable);
  const scratch = createTensors(gpu, `probe B=${B}`, {
    features: [B, D], logits: [B, K], targets: opts.softTargets ? [B, K] : [B], loss: [B], dlogits: [B, K],
    ...(distilled && { featuresDist: [B, D], logitsCls: [B, K], logitsDist: [B, K], lossDist: [B], dlogitsDist: [B, K] }),
  });
  const t = scratch.tensors as Record<string, Tensor>;
  const heads: HeadStep[] = [{ name: 'head', features: t.features!, logits: distilled ? t.logitsCls! : t.logits!, loss: t.loss!, dlogits: t.dlogits! }];
  if (distilled) heads.push({ name: 'head_dist', features: t.featuresDist!, logits: t.logitsDist!, loss: t.lossDist!, dlogits: t.dlogitsDist! });
  const targets = opts.softTargets ? { soft: t.targets! } : { labels: t.targets!, smoothing: opts.smoothing ?? 0 };
  const forward = await Promise.all(planHeads(model, { features: t.features!, featuresDist: t.featuresDist, logitsCls: t.logitsCls, logitsDist: t.logitsDist, logits: t.logits! }));
  const backward = await Promise.all(planHeadsBackward(model, heads, targets, arena.grads));
  const step = [...forward, ...backward];
  const rowBytes = D * 4;

  /** Copies cache rows into the batch's feature tensors: one copy per run of consecutive rows. */
  const gather = (encoder: GPUCommandEncoder, from: FeatureCache, rows: ArrayLike<number>, n: number) => {
    for (let b = 0; b < n;) {
      let run = 1;
      while (b + run < n && rows[b + run] === rows[b]! + run) run++;
      encoder.copyBufferToBuffer(from.features, rows[b]! * rowBytes, t.features!.buffer, b * rowBytes, run * rowBytes);
      if (from.featuresDist) encoder.copyBufferToBuffer(from.featuresDist, rows[b]! * rowBytes, t.featuresDist!.buffer, b * rowBytes, run * rowBytes);
      b += run;
    }
  };

  return {
    trainable, grads: arena.grads, gradsFlat: arena.gradsFlat, features: t.features!, featuresDist: t.featuresDist, logits: t.logits!,
    loss: t.loss!, lossDist: t.lossDist, bytes: arena.bytes + scratch.bytes,
    run(rows, targetValues, options = {}) {
      if (rows.length !== B) throw new Error(`probe: ${rows.length} rows for a batch of ${B}`);
      const bad = rows.findIndex((r) => !(r >= 0 && r < cache.count));
      if (bad >= 0) throw new Error(`probe: row ${rows[bad]} of example ${bad} is outside the cache [0, ${cache.count})`);
      writeTensor(gpu, t.targets!, targetValues);
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
      for (const b of [arena.gradsFlat.buffer, ...scratch.buffers]) b.destroy();
    },
  };
}
