// Training past frozen layers computed once, against training through the whole model: head-only
// training from cached features (the linear probe) and last-block training from the frozen blocks'
// cached output. The same gradients for the same batch, the same losses through the engine's
// training loop, and checkpoints that resume it exactly.
import { describe, expect, test } from 'vitest';
import type { Dataset } from '../src/engine/dataset';
import { train, type TrainSettings } from '../src/engine/train';
import { readTensor, type Tensor } from '../src/gpu/tensor';
import { planTraining } from '../src/graph/training';
import { createFeatureCache, planProbe } from '../src/graph/probe';
import type { ViTConfig } from '../src/models/vit/config';
import { createModel } from '../src/models/registry';
import { relL2 } from './helpers/compare';
import { testGpu } from './helpers/gpu';
import { randn } from './helpers/random';
import { randomWeights } from './helpers/weights';
import { SAME_COMPUTATION_REL } from './tolerances';

const gpu = await testGpu();

const SMALL: ViTConfig = {
  imageSize: 16, patchSize: 4, inChannels: 3, dim: 32, depth: 2, heads: 2, mlpDim: 64, qkvBias: true, eps: 1e-6,
  tokens: 'cls', globalPool: 'token', norm: 'pre', numClasses: 5, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], cropPct: 1,
};
const DISTILLED: ViTConfig = { ...SMALL, tokens: 'cls+dist' };

async function checkProbeGrads(c: ViTConfig, seed: number): Promise<void> {
  const B = 4;
  const model = createModel(gpu, c, randomWeights(c, seed));
  const input = randn(B * 3 * 16 * 16, seed + 100);
  const labels = Float32Array.from({ length: B }, (_, i) => (i * 3 + seed) % c.numClasses);
  const full = await planTraining(model, { batch: B, trainable: 'head', smoothing: 0.1 });
  full.run(input, labels);

  // The batch's features at scattered rows of a larger cache, the other rows noise.
  const N = 11;
  const rows = Int32Array.from([7, 2, 9, 3]);
  const cache = createFeatureCache(model, N, 'test cache');
  const fill = async (from: GPUBuffer, features: Float32Array) => {
    const all = randn(N * c.dim, seed + 200);
    rows.forEach((r, b) => all.set(features.subarray(b * c.dim, (b + 1) * c.dim), r * c.dim));
    gpu.device.queue.writeBuffer(from, 0, all);
  };
  expect(cache.features).toHaveLength(c.tokens === 'cls+dist' ? 2 : 1);
  for (const [h, buffer] of cache.features.entries()) await fill(buffer, await readTensor(gpu, full.forward.neck!.features[h]!));
  const probe = await planProbe(model, { batch: B, cache, smoothing: 0.1 });
  gpu.device.pushErrorScope('validation');
  probe.run(rows, labels);
  const error = await gpu.device.popErrorScope();
  if (error) throw new Error(`probe step: ${error.message}`);

  expect(probe.trainable).toEqual(full.trainable);
  expect(probe.gradsFlat.shape).toEqual(full.gradsFlat.shape);
  const worst = { name: '', err: 0 };
  expect(probe.losses).toHaveLength(full.losses.length);
  for (const [name, t] of [...probe.losses.map((l, h) => [`loss ${h}`, [l, full.losses[h]!]]), ['logits', [probe.logits, full.logits]],
    ...full.trainable.map((n) => [`grad ${n}`, [probe.grads.get(n)!, full.grads.get(n)!]])] as [string, [Tensor, Tensor]][]) {
    const err = relL2(await readTensor(gpu, t[0]), await readTensor(gpu, t[1]));
    if (!(err <= worst.err)) Object.assign(worst, { name, err });
  }
  console.log(`${c.tokens}: probe vs whole head-only plan, ${full.trainable.join(', ')}: worst relative L2 ${worst.err.toExponential(2)} (${worst.name})`);
  expect(worst.err, worst.name).toBeLessThanOrEqual(SAME_COMPUTATION_REL);

  // A batch whose rows are a contiguous run reads them with one copy; predict reads them the same way.
  probe.predict(cache, 2);
  const logits = await readTensor(gpu, probe.logits);
  expect(logits.every(Number.isFinite)).toBe(true);
  expect(() => probe.run(Int32Array.from([0, 1, 2, 11]), labels)).toThrow(/row 11 of example 3 is outside the cache \[0, 11\)/);
  probe.destroy();
  full.destroy();
  cache.destroy();
  model.destroy();
}

/** Per-step losses, held-out accuracies and the final head of a run through the engine's loop. */
async function run(c: ViTConfig, settings: Partial<TrainSettings>, data: { train: Dataset; holdout: Dataset }, resumeFrom?: Uint8Array, modelSeed = 11) {
  const model = createModel(gpu, c, randomWeights(c, modelSeed));
  const losses: number[] = [];
  const evals: number[] = [];
  /** Images whose features were done, at each feature-progress event ("done/total"). */
  const features: string[] = [];
  const checkpoints: Uint8Array[] = [];
  const s: TrainSettings = { epochs: 2, batch: 4, trainable: 'head', lr: 3e-2, warmupEpochs: 0.5, weightDecay: 0.05, smoothing: 0.1, seed: 5, ...settings };
  await train(model, 'probe test', data, s, {
    onProgress: (p) => {
      if (p.features) features.push(`${p.features.done}/${p.features.total}`);
      else if (p.evalAccuracy === undefined) losses.push(p.loss);
      else evals.push(p.evalAccuracy);
    },
    saveCheckpoint: async (bytes) => void checkpoints.push(bytes),
  }, resumeFrom);
  const weights = await model.download();
  model.destroy();
  return { losses, evals, features, checkpoints, head: weights.get('head.weight')!.data, fc2: weights.get(`blocks.${c.depth - 1}.mlp.fc2.weight`)!.data };
}

function dataset(c: ViTConfig, n: number, seed: number): Dataset {
  return { inputs: randn(n * 3 * 16 * 16, seed), labels: Int32Array.from({ length: n }, (_, i) => (i * 7 + seed) % c.numClasses), count: n };
}

describe('head-only training from cached features', () => {
  test('the probe step gives the whole head-only plan\'s loss, logits and head gradients (ViT)', () => checkProbeGrads(SMALL, 1));
  test('the same for DeiT-distilled (two heads, their losses averaged)', () => checkProbeGrads(DISTILLED, 2));

  for (const c of [SMALL, DISTILLED]) {
    test(`train() on cached features gives the same per-step losses as the whole forward pass (${c.tokens})`, async () => {
      const data = { train: dataset(c, 14, 3), holdout: dataset(c, 9, 4) };
      const cached = await run(c, {}, data);
      const uncached = await run(c, { featureCache: false }, data);
      console.log(`${c.tokens}: losses ${cached.losses.map((l) => l.toFixed(5)).join(' ')}; cached vs whole pass, worst relative difference ${Math.max(...cached.losses.map((l, i) => Math.abs(l - uncached.losses[i]!) / l)).toExponential(2)}`);
      expect(cached.losses).toHaveLength(2 * 3);
      expect(uncached.losses).toHaveLength(cached.losses.length);
      cached.losses.forEach((l, i) => expect(Math.abs(l - uncached.losses[i]!), `step ${i}`).toBeLessThanOrEqual(SAME_COMPUTATION_REL * l));
      expect(relL2(cached.head, randomWeights(c, 11).get('head.weight')!.data), 'the head trained').toBeGreaterThan(1e-3);
      expect(cached.evals).toEqual(uncached.evals);
      // Feature progress after every batch of 4: the 14 training images, then the 9 held out.
      expect(cached.features).toEqual(['4/23', '8/23', '12/23', '14/23', '18/23', '22/23', '23/23']);
      expect(uncached.features).toEqual([]);
      expect(relL2(cached.head, uncached.head)).toBeLessThanOrEqual(SAME_COMPUTATION_REL);
    });
  }

  test('a cached-features run resumed from its first epoch\'s checkpoint gives the uninterrupted run\'s losses', async () => {
    const data = { train: dataset(SMALL, 14, 5), holdout: dataset(SMALL, 9, 6) };
    const whole = await run(SMALL, {}, data);
    const resumed = await run(SMALL, {}, data, whole.checkpoints[0]);
    expect(resumed.losses).toHaveLength(3);
    resumed.losses.forEach((l, i) => expect(Math.abs(l - whole.losses[3 + i]!), `step ${i}`).toBeLessThanOrEqual(SAME_COMPUTATION_REL * l));
    expect(relL2(resumed.head, whole.head)).toBeLessThanOrEqual(SAME_COMPUTATION_REL);
  });
});

describe('last-block training from the frozen blocks\' cached output', () => {
  const DEEPER: ViTConfig = { ...SMALL, depth: 3 };
  const settings: Partial<TrainSettings> = { trainable: { lastBlocks: 1 }, augment: 'none', lr: 1e-2 };

  for (const c of [DEEPER, { ...DEEPER, tokens: 'cls+dist' } as ViTConfig]) {
    test(`train() gives the whole forward pass's per-step losses and accuracies (${c.tokens})`, async () => {
      const data = { train: dataset(c, 14, 7), holdout: dataset(c, 9, 8) };
      const cached = await run(c, settings, data);
      const uncached = await run(c, { ...settings, featureCache: false }, data);
      console.log(`last block, ${c.tokens}: losses ${cached.losses.map((l) => l.toFixed(5)).join(' ')}; cached vs whole pass, worst relative difference ${Math.max(...cached.losses.map((l, i) => Math.abs(l - uncached.losses[i]!) / l)).toExponential(2)}`);
      expect(cached.losses).toHaveLength(2 * 3);
      expect(uncached.losses).toHaveLength(cached.losses.length);
      cached.losses.forEach((l, i) => expect(Math.abs(l - uncached.losses[i]!), `step ${i}`).toBeLessThanOrEqual(SAME_COMPUTATION_REL * l));
      expect(cached.evals).toEqual(uncached.evals);
      expect(cached.features).toEqual(['4/23', '8/23', '12/23', '14/23', '18/23', '22/23', '23/23']);
      expect(uncached.features).toEqual([]);
      expect(relL2(cached.fc2, randomWeights(c, 11).get(`blocks.${c.depth - 1}.mlp.fc2.weight`)!.data), 'the last block trained').toBeGreaterThan(1e-3);
      expect(relL2(cached.fc2, uncached.fc2)).toBeLessThanOrEqual(SAME_COMPUTATION_REL);
      expect(relL2(cached.head, uncached.head)).toBeLessThanOrEqual(SAME_COMPUTATION_REL);
    });
  }

  test('a run resumed from its first epoch\'s checkpoint gives the uninterrupted run\'s losses', async () => {
    const data = { train: dataset(DEEPER, 14, 9), holdout: dataset(DEEPER, 9, 10) };
    const whole = await run(DEEPER, settings, data);
    // Into a model with other weights: the frozen blocks' output must come from the checkpoint's.
    const resumed = await run(DEEPER, settings, data, whole.checkpoints[0], 99);
    expect(resumed.losses).toHaveLength(3);
    resumed.losses.forEach((l, i) => expect(Math.abs(l - whole.losses[3 + i]!), `step ${i}`).toBeLessThanOrEqual(SAME_COMPUTATION_REL * l));
    expect(relL2(resumed.fc2, whole.fc2)).toBeLessThanOrEqual(SAME_COMPUTATION_REL);
  });

  test('a stop asked for while the frozen output is computed ends the run before its first step', async () => {
    const model = createModel(gpu, DEEPER, randomWeights(DEEPER, 11));
    const seen: string[] = [];
    let steps = 0;
    const result = await train(model, 'stop test', { train: dataset(DEEPER, 14, 13), holdout: dataset(DEEPER, 9, 14) },
      { epochs: 2, batch: 4, trainable: { lastBlocks: 1 }, augment: 'none', lr: 1e-2, warmupEpochs: 0, weightDecay: 0.05, smoothing: 0.1, seed: 5 }, {
        onProgress: (p) => (p.features ? seen.push(`${p.features.done}/${p.features.total}`) : steps++),
        shouldStop: () => seen.length >= 2,
      });
    model.destroy();
    expect(result.stopped).toBe(true);
    expect(seen).toEqual(['4/23', '8/23']);
    expect(steps).toBe(0);
  });

  test('with augmentation the frozen blocks run in every step instead (nothing is cached)', async () => {
    const data = { train: dataset(DEEPER, 8, 11), holdout: dataset(DEEPER, 4, 12) };
    const augmented = await run(DEEPER, { ...settings, augment: 'light', epochs: 1 }, data);
    expect(augmented.features).toEqual([]);
    expect(augmented.losses.every(Number.isFinite)).toBe(true);
  });
});
