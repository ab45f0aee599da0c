// DeiT-tiny (the repository's F16 weights) on the GPU against golden outputs of an independent
// float64 implementation on timm's F32 weights, at the bounds the F16 rounding sets (F16_WEIGHTS_TOL).
import { beforeAll, describe, expect, test } from 'vitest';
import { planForward, type ForwardPlan } from '../src/graph/forward';
import { readTensor } from '../src/gpu/tensor';
import { PRESETS } from '../src/models/vit/config';
import { createModel } from '../src/models/registry';
import { compare, relL2 } from './helpers/compare';
import { DEIT_TINY_URL, fetchSafetensors, GOLDEN_URL, hostWeights } from './helpers/fixtures';
import { testGpu } from './helpers/gpu';
import { F16_WEIGHTS_TOL } from './tolerances';

const gpu = await testGpu();

function topK(logits: ArrayLike<number>, k: number): number[] {
  return Array.from(logits, (v, i) => [v, i] as const).sort((a, b) => b[0] - a[0]).slice(0, k).map(([, i]) => i);
}

describe('DeiT-tiny against the float64 golden file (chelsea.png, coffee.png)', () => {
  let plan: ForwardPlan;
  let golden: Awaited<ReturnType<typeof fetchSafetensors>>;
  beforeAll(async () => {
    golden = await fetchSafetensors(GOLDEN_URL);
    const model = createModel(gpu, PRESETS['deit-tiny'], hostWeights(await fetchSafetensors(DEIT_TINY_URL)));
    plan = await planForward(model, { batch: 2, attention: true });
    gpu.device.pushErrorScope('validation');
    plan.run(golden.get('input'));
    const error = await gpu.device.popErrorScope();
    if (error) throw new Error(`forward pass: ${error.message}`);
  });

  test('logits within the F16 weights\' bound and identical top-5', async () => {
    const got = await readTensor(gpu, plan.logits);
    const ref = golden.get('logits');
    for (let b = 0; b < 2; b++) {
      const g = got.subarray(b * 1000, (b + 1) * 1000);
      const r = ref.subarray(b * 1000, (b + 1) * 1000);
      const err = relL2(g, r);
      console.log(`image ${b}: logits relative L2 error ${err.toExponential(2)}`);
      expect(err).toBeLessThan(F16_WEIGHTS_TOL.logitsRelL2);
      expect(topK(g, 5)).toEqual(topK(r, 5));
    }
    expect(topK(got.subarray(0, 1000), 1)).toEqual([285]); // Egyptian Mau
    expect(topK(got.subarray(1000), 1)).toEqual([967]); // espresso
  });

  test('features (final normed cls token) within the F16 weights\' bound', async () => {
    const got = await readTensor(gpu, plan.features);
    const err = relL2(got, golden.get('features'));
    console.log(`features relative L2 error ${err.toExponential(2)}`);
    expect(err).toBeLessThan(F16_WEIGHTS_TOL.featuresRelL2);
  });

  test('the stored layers\' attention probabilities (first, middle, last) within the F16 weights\' bound', async () => {
    const layers = Array.from(golden.get('attention_layers'));
    const ref = golden.get('attention'); // (2, layers, 3, 197, 197): batch, stored layer, head
    const per = 3 * 197 * 197;
    let worst = 0;
    for (const [i, l] of layers.entries()) {
      const got = await readTensor(gpu, plan.blocks[l]!.probs!);
      const r = new Float32Array(2 * per);
      for (let b = 0; b < 2; b++) r.set(ref.subarray((b * layers.length + i) * per, (b * layers.length + i + 1) * per), b * per);
      const cmp = compare(got, r, { atol: F16_WEIGHTS_TOL.attentionAbs, rtol: 0 });
      worst = Math.max(worst, cmp.maxAbs);
      if (cmp.mismatches) throw new Error(`layer ${l}: ${cmp.report}`);
    }
    console.log(`attention max abs error over layers ${layers.join(', ')}: ${worst.toExponential(2)}`);
  });
});
