// The engine used directly (as the worker uses it): forward plans reused and bounded.
import { afterAll, describe, expect, test } from 'vitest';
import { Engine } from '../src/engine/engine';
import { PRESETS } from '../src/models/vit/config';
import { initWeights } from '../src/models/init';
import { exportWeights } from '../src/training/checkpoint';

const config = { ...PRESETS['fashion-mnist']!, numClasses: 10 };
const engine = await Engine.create();
await engine.loadModel('test', exportWeights(initWeights(config, 1), config), null);
afterAll(() => engine.destroy());

describe('forward plans', () => {
  test('classifying at six batch sizes keeps four plans, and every image gets the same logits', async () => {
    const image = new Float32Array(784).map((_, i) => Math.sin(i / 7));
    const logitsAt = async (batch: number) => {
      const input = new Float32Array(batch * 784);
      for (let b = 0; b < batch; b++) input.set(image, b * 784);
      return (await engine.classifyTensor(input, batch, 28, { logits: true })).map((r) => Array.from(r.logits!));
    };
    const [want] = await logitsAt(1);
    expect(engine.cachedPlans.count).toBe(1);
    // Then the first again: its plan was evicted and is made anew.
    for (const batch of [2, 3, 4, 5, 6, 1]) {
      for (const got of await logitsAt(batch)) expect(got, `batch ${batch}`).toEqual(want);
      expect(engine.cachedPlans.count).toBe(Math.min(batch === 1 ? 4 : batch, 4));
    }
    expect(engine.cachedPlans.bytes).toBeGreaterThan(0);
    // A plan in the cache is reused, not made again.
    const before = engine.cachedPlans;
    await logitsAt(6);
    expect(engine.cachedPlans).toEqual(before);
  });
});
