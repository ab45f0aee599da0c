// An engine whose binding limit is capped far below the device's (CreateGpuOptions.bufferLimits)
// splits the work on a small model as a GPU with small limits would: classification in smaller
// chunks, a training batch in micro-batches. Both must give what the uncapped engine gives; where
// one image is too much, the work is refused naming the tensor and the limit.
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { createGpu, DEFAULT_LIMITS } from '../src/gpu/device';
import type { Dataset } from '../src/engine/dataset';
import { Engine } from '../src/engine/engine';
import type { TrainProgress, TrainSettings } from '../src/engine/train';
import { initWeights } from '../src/models/init';
import { PRESETS } from '../src/models/vit/config';
import { exportWeights } from '../src/training/checkpoint';
import { parseSafetensors } from '../src/weights/safetensors';
import { relL2 } from './helpers/compare';
import { randn } from './helpers/random';
import { testGpu } from './helpers/gpu';
import { SAME_COMPUTATION_REL } from './tolerances';

// A ViT of one block on 28 px grey images in patches of 2 (196 + 1 tokens of width 16): its
// largest activation is one image's qkv, 197 x 48 floats = 37,824 bytes, so a cap of 80,000
// holds 2 images, and its 5,674 gradients (22,696 bytes and alignment) fit.
const config = { ...PRESETS['fashion-mnist']!, patchSize: 2, dim: 16, depth: 1, heads: 2, mlpDim: 32, numClasses: 10 };
const CAP = 80_000;
let capped: Engine;
let whole: Engine;
beforeAll(async () => {
  // Two engines on one device share its compiled pipelines.
  const { device } = await testGpu();
  [capped, whole] = [Engine.fromDevice(device, { bufferLimits: { maxStorageBufferBindingSize: CAP } }), Engine.fromDevice(device)];
  const weights = exportWeights(initWeights(config, 1), config);
  await Promise.all([capped.loadModel('test', weights, null), whole.loadModel('test', weights, null)]);
});
afterAll(() => {
  capped.destroy();
  whole.destroy();
});

test('a device asking for the default limits has the WebGPU defaults; the limits project\'s test devices too', async () => {
  const gpu = await createGpu({ limits: 'default' });
  try {
    for (const [name, value] of Object.entries(DEFAULT_LIMITS)) expect(gpu.device.limits[name as keyof GPUSupportedLimits], name).toBe(value);
    expect(gpu.maxBindingBytes).toBe(DEFAULT_LIMITS.maxStorageBufferBindingSize);
  } finally {
    gpu.device.destroy();
  }
  const { device } = await testGpu();
  const defaults = device.limits.maxStorageBufferBindingSize === DEFAULT_LIMITS.maxStorageBufferBindingSize;
  if (inject('gpuLimits') === 'default') expect(defaults).toBe(true);
  console.log(`test device: maxStorageBufferBindingSize ${device.limits.maxStorageBufferBindingSize} (${inject('gpuLimits') ?? 'adapter'} limits)`);
});

describe('an engine capped at 80,000 bytes a binding', () => {
  test('classifies 5 images in chunks of 2, 2 and 1 to the same logits as the uncapped engine in one chunk', async () => {
    const input = randn(5 * 784, 3);
    const got = await capped.classifyTensor(input, 5, 28, { logits: true });
    const want = await whole.classifyTensor(input, 5, 28, { logits: true });
    // Plans of batch 2 and 1 (the uncapped engine: one of 5); each image's logits do not depend
    // on the others in its batch.
    expect(capped.cachedPlans.count).toBe(2);
    expect(whole.cachedPlans.count).toBe(1);
    for (let i = 0; i < 5; i++) expect(Array.from(got[i]!.logits!), `image ${i}`).toEqual(Array.from(want[i]!.logits!));
  });

  test('refuses attention maps, where one image\'s probabilities exceed the cap, naming them and the cap', async () => {
    // 2 heads x 197 x 197 floats.
    await expect(capped.classifyTensor(randn(784, 4), 1, 28, { attention: true })).rejects.toThrow(
      'test at 28 px: "blocks.0.attn probs" of one image takes 303.2 KiB (310,472 bytes), over the engine\'s maxStorageBufferBindingSize cap of 80,000 bytes',
    );
  });

  test('trains a batch of 8 as 4 micro-batches of 2: the same loss and weights as one batch, and a warning that says so', async () => {
    const n = 8;
    const classes = Array.from({ length: 10 }, (_, i) => `class ${i}`);
    const data = (count: number, seed: number): Dataset => ({ inputs: randn(count * 784, seed), labels: Int32Array.from({ length: count }, (_, i) => i % 10), count });
    const settings: TrainSettings = { epochs: 1, batch: n, trainable: 'all', lr: 1e-3, warmupEpochs: 0, weightDecay: 0.05, smoothing: 0.1, seed: 2, augment: 'none' };
    const run = async (engine: Engine) => {
      const progress: TrainProgress[] = [];
      await engine.train('current', classes, async () => ({ train: data(n, 5), holdout: data(4, 6) }), settings, { onProgress: (p) => progress.push(p) });
      return { progress, weights: parseSafetensors(await engine.exportModel()) };
    };
    // Too few examples for one step are counted in the batch and accumulation the user set, not in micro-batches.
    const tooFew = capped.train('current', classes, async () => ({ train: data(n, 5), holdout: data(4, 6) }), { ...settings, accumulate: 2 });
    await expect(tooFew).rejects.toThrow('training: 8 examples make 1 batch of 8, fewer than the 2 one step accumulates');
    const split = await run(capped);
    const one = await run(whole);
    const steps = (r: typeof split) => r.progress.filter((p) => p.evalAccuracy === undefined);
    expect(steps(one).map((p) => p.step)).toEqual([1]);
    expect(steps(split).map((p) => p.step)).toEqual([1, 2, 3, 4]);
    // Each micro-batch reports its own loss; their mean is the batch's.
    const meanLoss = steps(split).reduce((sum, p) => sum + p.loss, 0) / 4;
    const loss = steps(one)[0]!.loss;
    expect(Math.abs(meanLoss - loss) / loss).toBeLessThan(SAME_COMPUTATION_REL);
    expect(split.progress.at(-1)!.warning).toBe('batch 8 runs as 4 micro-batches of 2, to fit the engine\'s maxStorageBufferBindingSize cap of 80,000 bytes');
    expect(one.progress.at(-1)!.warning).toBeUndefined();
    // The step's update: every parameter tensor within f32 rounding of the one-batch step.
    for (const name of one.weights.names()) {
      const [got, want] = [split.weights.get(name), one.weights.get(name)];
      if (want.every((v) => v === 0)) expect(got.every((v) => v === 0), name).toBe(true);
      else expect(relL2(got, want), name).toBeLessThan(SAME_COMPUTATION_REL);
    }
  });
});
