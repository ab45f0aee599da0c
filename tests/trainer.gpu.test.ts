// Training end to end on the GPU: overfitting a tiny batch, exact resume from a checkpoint kept
// in IndexedDB on a fresh device, refusing another model's checkpoint, surviving a NaN step,
// steps on augmented batches with soft targets.
import { describe, expect, test } from 'vitest';
import { train, type TrainProgress } from '../src/engine/train';
import { createGpu } from '../src/gpu/device';
import { readTensor } from '../src/gpu/tensor';
import type { ViTConfig } from '../src/models/vit/config';
import { createModel } from '../src/models/registry';
import { AUGMENT_PRESETS, augmentBatch } from '../src/training/augment';
import { seededRandom } from '../src/training/random';
import { loadCheckpointBytes, saveCheckpoint } from '../src/training/storage';
import { Trainer, type TrainerOptions } from '../src/training/trainer';
import { relL2 } from './helpers/compare';
import { testGpu } from './helpers/gpu';
import { randn } from './helpers/random';
import { randomWeights } from './helpers/weights';

const gpu = await testGpu();

const TINY: ViTConfig = {
  imageSize: 16, patchSize: 4, inChannels: 3, dim: 32, depth: 2, heads: 2, mlpDim: 64, qkvBias: true, eps: 1e-6,
  tokens: 'cls', globalPool: 'token', norm: 'pre', numClasses: 4, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], cropPct: 1,
};
const B = 8;
const input = randn(B * 3 * 16 * 16, 42);
const labels = Float32Array.from({ length: B }, (_, i) => i % 4);
const OPTIONS: TrainerOptions = { batch: B, smoothing: 0, schedule: { baseLr: 3e-3, warmupSteps: 5, totalSteps: 200 }, adamw: { weightDecay: 0 } };

describe('training', () => {
  test('gradient accumulation: 4 micro-batches of 2 give the update of one batch of 8, with clipping active', async () => {
    const weights = randomWeights(TINY, 3);
    // maxNorm far below the gradient's norm, so every step is clipped.
    const options = { ...OPTIONS, adamw: { weightDecay: 0.05, maxNorm: 0.05 } };
    const whole = await Trainer.create(createModel(gpu, TINY, weights), 'whole', options);
    const micro = await Trainer.create(createModel(gpu, TINY, weights), 'micro', { ...options, batch: 2, accumulation: 4 });
    try {
      const per = 3 * 16 * 16;
      for (let step = 0; step < 2; step++) {
        await whole.trainStep(input, labels);
        for (let m = 0; m < 4; m++) {
          const r = await micro.trainStep(input.subarray(2 * m * per, 2 * (m + 1) * per), labels.subarray(2 * m, 2 * m + 2));
          expect(r.step, `optimizer steps after micro-batch ${m + 1}`).toBe(step + (m === 3 ? 1 : 0));
        }
        const [normWhole, normMicro] = [await whole.optimizer.gradNorm(), await micro.optimizer.gradNorm()];
        expect(normWhole).toBeGreaterThan(options.adamw.maxNorm);
        // The norm clipping sees: equal, not 4 times as large.
        expect(Math.abs(normMicro - normWhole) / normWhole, `step ${step} gradient norm`).toBeLessThan(1e-5);
        for (const [name, g] of whole.plan.grads) {
          expect(relL2(await readTensor(gpu, micro.plan.grads.get(name)!), await readTensor(gpu, g)), `step ${step} gradient of ${name}`).toBeLessThan(1e-5);
        }
      }
      // Adam's first steps move each weight by about lr whatever its gradient's size, so entries
      // whose gradient is rounding noise (the key bias: softmax ignores it) differ by up to lr.
      const [a, b] = [await whole.model.download(), await micro.model.download()];
      for (const [name, t] of a) expect(relL2(b.get(name)!.data, t.data), name).toBeLessThan(1e-4);
    } finally {
      for (const t of [whole, micro]) {
        t.destroy();
        t.model.destroy();
      }
    }
  });

  test('overfits a tiny batch to 100% accuracy', async () => {
    const trainer = await Trainer.create(createModel(gpu, TINY, randomWeights(TINY, 1)), 'tiny', OPTIONS);
    const first = await trainer.trainStep(input, labels);
    let last = first;
    for (let i = 0; i < 80 && last.accuracy < 1; i++) last = await trainer.trainStep(input, labels);
    console.log(`loss ${first.loss.toFixed(4)} -> ${last.loss.toFixed(4)}, accuracy ${last.accuracy} after ${last.step} steps`);
    expect(last.accuracy).toBe(1);
    expect(last.loss).toBeLessThan(first.loss / 2);
  });

  test('a run resumed from a stored checkpoint on a new device gives the same next-step loss', async () => {
    const steps = async (t: Trainer, n: number) => { for (let i = 0; i < n; i++) await t.trainStep(input, labels); };
    const uninterrupted = await Trainer.create(createModel(gpu, TINY, randomWeights(TINY, 2)), 'tiny', OPTIONS);
    await steps(uninterrupted, 5);
    await saveCheckpoint('test-resume', await uninterrupted.checkpoint(1));
    const expected = await uninterrupted.trainStep(input, labels);

    // "Reload": a new device and model, weights initialised differently, state only from storage.
    const freshGpu = await createGpu();
    const resumed = await Trainer.create(createModel(freshGpu, TINY, randomWeights(TINY, 99)), 'tiny', OPTIONS);
    const stored = await loadCheckpointBytes('test-resume');
    expect(resumed.restore(stored!)).toBe(1);
    expect(resumed.step).toBe(5);
    const got = await resumed.trainStep(input, labels);
    console.log(`next-step loss uninterrupted ${expected.loss}, resumed ${got.loss}`);
    expect(got.step).toBe(expected.step);
    expect(Math.abs(got.loss - expected.loss)).toBeLessThanOrEqual(1e-6 * Math.abs(expected.loss));
    freshGpu.device.destroy();
  });

  test('a checkpoint the storage quota refuses is a warning in the progress, and training goes on to the end', async () => {
    const n = 16;
    const data = { inputs: randn(n * 3 * 16 * 16, 45), labels: Int32Array.from({ length: n }, (_, i) => i % 4), count: n };
    const quota = 'storage: the browser storage quota is exceeded; checkpoint not saved';
    const events: TrainProgress[] = [];
    const saved: number[] = [];
    const result = await train(createModel(gpu, TINY, randomWeights(TINY, 9)), 'tiny', { train: data, holdout: data },
      { epochs: 3, batch: 8, trainable: 'all', lr: 1e-3, warmupEpochs: 0, weightDecay: 0.05, smoothing: 0.1, seed: 3 }, {
        onProgress: (p) => events.push(p),
        saveCheckpoint: async (_, epoch) => {
          if (epoch !== 2) throw new Error(quota); // full disk, space freed, full again
          saved.push(epoch);
        },
      });
    const evals = events.filter((e) => e.evalAccuracy !== undefined);
    expect(evals.map((e) => e.warning)).toEqual([quota, undefined, quota]);
    expect(saved).toEqual([2]);
    expect(events.filter((e) => e.evalAccuracy === undefined)).toHaveLength(3 * 2);
    expect(result).toMatchObject({ epochs: 3, stopped: false });
    expect(result.evalAccuracy).toBe(evals.at(-1)!.evalAccuracy);
  });

  test('a checkpoint of another model is refused by name', async () => {
    const other = await Trainer.create(createModel(gpu, { ...TINY, numClasses: 7 }, randomWeights({ ...TINY, numClasses: 7 }, 3)), 'seven-class', OPTIONS);
    const mine = await Trainer.create(createModel(gpu, TINY, randomWeights(TINY, 4)), 'tiny', OPTIONS);
    expect(() => mine.restore(new Uint8Array(0))).toThrow(/safetensors: empty file \(0 bytes\)/);
    const bytes = await other.checkpoint(0);
    expect(() => mine.restore(bytes)).toThrow(/checkpoint "seven-class" is for another model than "tiny": numClasses 7 vs 4/);
  });

  test('a learning rate that sends the loss to NaN or Inf skips the step and keeps the weights', async () => {
    const model = createModel(gpu, TINY, randomWeights(TINY, 5));
    const trainer = await Trainer.create(model, 'tiny', { ...OPTIONS, schedule: { baseLr: 1e30, warmupSteps: 0, totalSteps: 10 }, adamw: { maxNorm: Infinity } });
    let skipped = 0;
    for (let i = 0; i < 4; i++) {
      const before = await model.download();
      const r = await trainer.trainStep(input, labels);
      if (!r.skipped) continue;
      skipped++;
      const after = await model.download();
      for (const [name, w] of after) expect(Array.from(w.data), name).toEqual(Array.from(before.get(name)!.data));
    }
    expect(skipped).toBeGreaterThan(0);
  });

  test('the full augmentation recipe (crop, flip, RandAugment, jitter, mixup/CutMix soft targets) trains', async () => {
    // Each class a colour with noise, so the label survives crops and flips and can be learned.
    const colours = [[0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.1, 0.9], [0.8, 0.8, 0.2]];
    const noise = randn(B * 3 * 16 * 16, 43, 0.1);
    const images = noise.map((v, i) => (v + colours[labels[Math.floor(i / 768)]!]![Math.floor(i / 256) % 3]! - 0.5) / 0.5);
    const model = createModel(gpu, TINY, randomWeights(TINY, 7));
    const before = await model.download();
    const trainer = await Trainer.create(model, 'tiny', { ...OPTIONS, smoothing: 0.1, softTargets: true });
    const ctx = { mean: TINY.mean, std: TINY.std, numClasses: TINY.numClasses, smoothing: 0.1 };
    const losses: number[] = [];
    for (let step = 0; step < 40; step++) {
      const batch = augmentBatch(images, labels, { n: B, c: 3, h: 16, w: 16 }, ctx, AUGMENT_PRESETS.seed, seededRandom(1, step));
      expect(batch.targets.length).toBe(B * TINY.numClasses);
      const r = await trainer.trainStep(batch.images, batch.targets);
      expect(r.skipped).toBe(false);
      losses.push(r.loss);
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    console.log(`augmented soft-target training: mean loss of the first 10 steps ${mean(losses.slice(0, 10)).toFixed(4)}, of the last 10 ${mean(losses.slice(-10)).toFixed(4)}`);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(mean(losses.slice(-10))).toBeLessThan(mean(losses.slice(0, 10)));
    const after = await model.download();
    for (const [name, w] of after) expect(Array.from(w.data), name).not.toEqual(Array.from(before.get(name)!.data));
    trainer.destroy();
  });

  test('the engine\'s training loop runs with every augmentation preset (a target layout the trainer did not expect would throw)', async () => {
    const n = 16;
    const data = { inputs: randn(n * 3 * 16 * 16, 44), labels: Int32Array.from({ length: n }, (_, i) => i % 4), count: n };
    const settings = { epochs: 1, batch: 8, trainable: 'all' as const, lr: 1e-3, warmupEpochs: 0, weightDecay: 0.05, smoothing: 0.1, seed: 3 };
    for (const augment of [undefined, 'none', 'light', { mixup: 0, cutmix: 1 }] as const) {
      const model = createModel(gpu, TINY, randomWeights(TINY, 8));
      const losses: number[] = [];
      const result = await train(model, 'tiny', { train: data, holdout: data }, { ...settings, augment }, { onProgress: (p) => { if (p.step && !Number.isNaN(p.loss)) losses.push(p.loss); } });
      expect(losses.length, JSON.stringify(augment)).toBe(2);
      expect(losses.every(Number.isFinite), JSON.stringify(augment)).toBe(true);
      expect(result.evalAccuracy).toBeGreaterThanOrEqual(0);
      model.destroy();
    }
  });

  test('labels out of range are rejected before anything runs', async () => {
    const trainer = await Trainer.create(createModel(gpu, TINY, randomWeights(TINY, 6)), 'tiny', OPTIONS);
    await expect(trainer.trainStep(input, labels.map((l, i) => (i === 3 ? 9 : l)))).rejects.toThrow(/label 9 of example 3 is outside \[0, 4\)/);
  });
});
