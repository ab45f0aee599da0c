// Training through the worker API: from scratch on the bundled Fashion-MNIST split, resume in a
// fresh worker, export and load back (also as a model kept in the browser), stop, IDX files, and the bad datasets a user can make.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ViTConfig } from '../src/models/vit/config';
import type { TrainProgress } from '../src/worker/api';
import { startEngineWorker, type EngineClient } from '../src/worker/start';
import { fetchBytes } from './helpers/fixtures';
import { SAME_COMPUTATION_REL } from './tolerances';

let engine: EngineClient;
beforeAll(async () => {
  engine = startEngineWorker();
  await engine.init();
});
afterAll(() => engine.terminate());

// Sized for a CPU adapter: 2 epochs of 4 steps of 32 images.
const SETTINGS = { epochs: 2, batch: 32, trainable: 'all' as const, lr: 2e-3, warmupEpochs: 0.5, seed: 1 };

describe('training in the worker', () => {
  test('a small ViT trains from scratch on Fashion-MNIST with progress, evaluation and a checkpoint', async () => {
    const events: TrainProgress[] = [];
    const result = await engine.train(
      { model: 'fashion-mnist', dataset: { kind: 'fashion-mnist', train: 128, holdout: 64 }, settings: SETTINGS, checkpointKey: 'worker-test' },
      (p) => events.push(p),
    );
    const steps = events.filter((e) => e.evalAccuracy === undefined);
    const evals = events.filter((e) => e.evalAccuracy !== undefined);
    console.log(`loss ${steps[0]!.loss.toFixed(3)} -> ${steps.at(-1)!.loss.toFixed(3)}, held-out accuracy ${evals.map((e) => e.evalAccuracy!.toFixed(3)).join(' -> ')}, ${steps.at(-1)!.imagesPerSecond.toFixed(0)} images/s`);
    expect(steps).toHaveLength(2 * 4);
    expect(evals).toHaveLength(2);
    expect(steps.at(-1)!.loss).toBeLessThan(steps[0]!.loss);
    expect(result.evalAccuracy).toBe(evals.at(-1)!.evalAccuracy);
    expect(result.evalAccuracy).toBeGreaterThanOrEqual(0);
    expect(result.model.config.numClasses).toBe(10);
    expect(steps.every((e) => e.secondsLeft >= 0 && e.imagesPerSecond > 0)).toBe(true);
  }, 300_000);

  test('a run stopped after its first epoch resumes in a fresh worker with the uninterrupted run\'s losses', async () => {
    const request = { model: 'fashion-mnist' as const, dataset: { kind: 'fashion-mnist' as const, train: 32, holdout: 8 }, settings: { ...SETTINGS, batch: 16 } };
    const stepLosses = (events: TrainProgress[]) => events.filter((e) => e.evalAccuracy === undefined).map((e) => e.loss);
    const whole: TrainProgress[] = [];
    await engine.train(request, (p) => whole.push(p));

    // The same run, stopped once its first epoch's checkpoint is stored.
    const first: TrainProgress[] = [];
    const stopped = await engine.train({ ...request, checkpointKey: 'worker-resume' }, (p) => {
      first.push(p);
      if (p.evalAccuracy !== undefined) void engine.stopTraining();
    });
    expect(stopped.stopped).toBe(true);
    expect(stepLosses(first).slice(0, 2)).toEqual(stepLosses(whole).slice(0, 2));

    // A new worker (a reloaded page) with nothing but the stored checkpoint.
    const fresh = startEngineWorker();
    try {
      await fresh.init();
      const resumed: TrainProgress[] = [];
      const result = await fresh.train({ ...request, checkpointKey: 'worker-resume', resume: true }, (p) => resumed.push(p));
      const want = stepLosses(whole).slice(2);
      const got = stepLosses(resumed);
      console.log(`second epoch's losses, uninterrupted ${want.join(', ')}; resumed in a fresh worker ${got.join(', ')}`);
      expect(resumed.every((e) => e.epoch === 1)).toBe(true);
      expect(got).toHaveLength(2);
      got.forEach((l, i) => expect(Math.abs(l - want[i]!), `step ${i}`).toBeLessThanOrEqual(SAME_COMPUTATION_REL * want[i]!));
      expect(result.evalAccuracy).toBe(whole.at(-1)!.evalAccuracy);
    } finally {
      fresh.terminate();
    }
  }, 300_000);

  test('the exported safetensors loads back and gives the same logits', async () => {
    const input = new Float32Array(2 * 28 * 28).map((_, i) => Math.cos(i));
    const [a] = await engine.classifyTensor(input.slice(0, 784), 1, 28, { logits: true });
    const bytes = await engine.exportModel();
    const info = await engine.loadModel('exported', bytes, { heads: 4, mean: [0.286], std: [0.353], cropPct: 1 });
    expect((info.config as ViTConfig).dim).toBe(64);
    const [b] = await engine.classifyTensor(input.slice(0, 784), 1, 28, { logits: true });
    expect(Array.from(b!.logits!)).toEqual(Array.from(a!.logits!));
    // Kept in the browser: exported as saved, and loaded back from the stored file (read by slices).
    const saved = await engine.saveModel('kept');
    try {
      expect(new Uint8Array(await engine.exportSavedModel(saved.key))).toEqual(new Uint8Array(await engine.exportModel()));
      await engine.loadSavedModel(saved.key);
      const [c] = await engine.classifyTensor(input.slice(0, 784), 1, 28, { logits: true });
      expect(Array.from(c!.logits!)).toEqual(Array.from(a!.logits!));
    } finally {
      await engine.deleteSavedModel(saved.key);
    }
  });

  test('stop ends a run after the current step and keeps the model usable', async () => {
    const run = engine.train({ model: 'fashion-mnist', dataset: { kind: 'fashion-mnist', train: 64, holdout: 32 }, settings: { ...SETTINGS, epochs: 50 } }, (p) => {
      if (p.step === 2) void engine.stopTraining();
    });
    const result = await run;
    expect(result.stopped).toBe(true);
    expect((await engine.classifyTensor(new Float32Array(784), 1, 28))[0]!.top).toHaveLength(5);
  });

  test('a fine-tune stopped while the frozen layers run (before any step) leaves the loaded model as it was', async () => {
    const image = new Float32Array(784).map((_, i) => Math.cos(i / 5));
    const [before] = await engine.classifyTensor(image.slice(), 1, 28, { logits: true });
    const models = await engine.listSavedModels();
    const result = await engine.train(
      { model: 'current', dataset: { kind: 'fashion-mnist', train: 64, holdout: 32 }, settings: { ...SETTINGS, trainable: 'head', batch: 8 } },
      (p) => p.features && void engine.stopTraining(),
    );
    expect(result).toMatchObject({ stopped: true, steps: 0 });
    const [after] = await engine.classifyTensor(image.slice(), 1, 28, { logits: true });
    expect(Array.from(after!.logits!)).toEqual(Array.from(before!.logits!));
    expect(result.model.name).not.toMatch(/fine-tuned/);
    expect(await engine.listSavedModels()).toEqual(models);
  });

  test('IDX files: the first N images of each class train, the first images of the file are held out', async () => {
    const [images, labels] = await Promise.all([fetchBytes('/data/fashion-mnist/t10k-images-idx3-ubyte.gz'), fetchBytes('/data/fashion-mnist/t10k-labels-idx1-ubyte.gz')]);
    const steps: TrainProgress[] = [];
    const result = await engine.train(
      { model: 'fashion-mnist', dataset: { kind: 'idx', train: { images, labels, offset: 20, perClass: 2 }, holdout: { images, labels, count: 25 } }, settings: { ...SETTINGS, epochs: 1, batch: 8 } },
      (p) => p.evalAccuracy === undefined && steps.push(p),
    );
    expect(steps).toHaveLength(2); // 10 classes x 2 images in batches of 8
    expect(result.model.config.numClasses).toBe(10);
    expect(Number.isInteger(Math.round(result.evalAccuracy * 25 * 1e4) / 1e4)).toBe(true);
    await expect(engine.train({ model: 'fashion-mnist', dataset: { kind: 'idx', train: { images, labels, offset: 9990, perClass: 2 }, holdout: { images, labels, count: 5 } } }))
      .rejects.toThrow(/training images: class \d has [01] images from image 9990 on, 2 per class asked for/);
    await expect(engine.train({ model: 'fashion-mnist', dataset: { kind: 'fashion-mnist', train: 100, holdout: 100, perClass: 5 } })).rejects.toThrow(/give train or perClass, not both/);
  });

  test('an empty class, a single class and an impossible split are refused by name', async () => {
    const png = new Blob([await fetchBytes('/samples/coffee.png')], { type: 'image/png' });
    await expect(engine.train({ model: 'fashion-mnist', dataset: { kind: 'images', classes: [{ name: 'cups', images: [png] }, { name: 'plates', images: [] }] } })).rejects.toThrow(/class "plates" has no images/);
    await expect(engine.train({ model: 'fashion-mnist', dataset: { kind: 'images', classes: [{ name: 'cups', images: [png, png] }] } })).rejects.toThrow(/needs at least two classes/);
    await expect(engine.train({ model: 'fashion-mnist', dataset: { kind: 'fashion-mnist', train: 9000, holdout: 2000 } })).rejects.toThrow(/the bundled split has 10000/);
  });
});
