// Training end to end on the GPU: overfitting a tiny batch, exact resume from a checkpoint kept
// in IndexedDB on a fresh device, refusing another model's checkpoint, surviving a NaN step.
import { describe, expect, test } from 'vitest';
import { createGpu } from '../src/gpu/device';
import type { ViTConfig } from '../src/models/config';
import { ViT } from '../src/models/vit';
import { loadCheckpointBytes, saveCheckpoint } from '../src/training/storage';
import { Trainer, type TrainerOptions } from '../src/training/trainer';
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
  test('overfits a tiny batch to 100% accuracy', async () => {
    const trainer = await Trainer.create(ViT.create(gpu, TINY, randomWeights(TINY, 1)), 'tiny', OPTIONS);
    const first = await trainer.trainStep(input, labels);
    let last = first;
    for (let i = 0; i < 80 && last.accuracy < 1; i++) last = await trainer.trainStep(input, labels);
    console.log(`loss ${first.loss.toFixed(4)} -> ${last.loss.toFixed(4)}, accuracy ${last.accuracy} after ${last.step} steps`);
    expect(last.accuracy).toBe(1);
    expect(last.loss).toBeLessThan(first.loss / 2);
  });

  test('a run resumed from a stored checkpoint on a new device gives the same next-step loss', async () => {
    const steps = async (t: Trainer, n: number) => { for (let i = 0; i < n; i++) await t.trainStep(input, labels); };
    const uninterrupted = await Trainer.create(ViT.create(gpu, TINY, randomWeights(TINY, 2)), 'tiny', OPTIONS);
    await steps(uninterrupted, 5);
    await saveCheckpoint('test-resume', await uninterrupted.checkpoint(1));
    const expected = await uninterrupted.trainStep(input, labels);

    // "Reload": a new device and model, weights initialised differently, state only from storage.
    const freshGpu = await createGpu();
    const resumed = await Trainer.create(ViT.create(freshGpu, TINY, randomWeights(TINY, 99)), 'tiny', OPTIONS);
    const stored = await loadCheckpointBytes('test-resume');
    expect(resumed.restore(stored!)).toBe(1);
    expect(resumed.step).toBe(5);
    const got = await resumed.trainStep(input, labels);
    console.log(`next-step loss uninterrupted ${expected.loss}, resumed ${got.loss}`);
    expect(got.step).toBe(expected.step);
    expect(Math.abs(got.loss - expected.loss)).toBeLessThanOrEqual(1e-6 * Math.abs(expected.loss));
    freshGpu.device.destroy();
  });

  test('a checkpoint of another model is refused by name', async () => {
    const other = await Trainer.create(ViT.create(gpu, { ...TINY, numClasses: 7 }, randomWeights({ ...TINY, numClasses: 7 }, 3)), 'seven-class', OPTIONS);
    const mine = await Trainer.create(ViT.create(gpu, TINY, randomWeights(TINY, 4)), 'tiny', OPTIONS);
    expect(() => mine.restore(new Uint8Array(0))).toThrow(/safetensors: truncated/);
    const bytes = await other.checkpoint(0);
    expect(() => mine.restore(bytes)).toThrow(/checkpoint "seven-class" is for another model than "tiny": numClasses 7 vs 4/);
  });

  test('a learning rate that sends the loss to NaN or Inf skips the step and keeps the weights', async () => {
    const model = ViT.create(gpu, TINY, randomWeights(TINY, 5));
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

  test('labels out of range are rejected before anything runs', async () => {
    const trainer = await Trainer.create(ViT.create(gpu, TINY, randomWeights(TINY, 6)), 'tiny', OPTIONS);
    await expect(trainer.trainStep(input, labels.map((l, i) => (i === 3 ? 9 : l)))).rejects.toThrow(/label 9 of example 3 is outside \[0, 4\)/);
  });
});
