// timm's ViT options on the GPU against timm's own float64 outputs (tests/fixtures/deit3 and
// tests/fixtures/vitreg, see NOTICE.md), loaded as timm saves them (weights and config.json):
//   DeiT-III (deit3_small_patch16_224 at width 96, depth 4, 3 heads, 10 classes): LayerScale and a
//     position embedding without the class token, for the two golden photos (the DeiT-tiny golden
//     file's input, the same tensor);
//   DINOv2 with registers (vit_small_patch14_reg4_dinov2 at width 48, depth 3, 112 px, 10
//     classes): patch 14, LayerScale, 4 register tokens, a position embedding without prefix tokens.
// Logits and features, then the loss and every parameter's gradient through the training plan.
import { beforeAll, describe, expect, test } from 'vitest';
import { readTensor } from '../src/gpu/tensor';
import { planForward, type ForwardPlan } from '../src/graph/forward';
import type { Model } from '../src/graph/model';
import { planTraining } from '../src/graph/training';
import type { ViTConfig } from '../src/models/vit/config';
import { createModel } from '../src/models/registry';
import { loadCheckpoint } from '../src/weights/load';
import type { SafetensorsFile } from '../src/weights/safetensors';
import { relL2 } from './helpers/compare';
import { fetchBytes, fetchSafetensors, GOLDEN_URL } from './helpers/fixtures';
import { testGpu } from './helpers/gpu';
import { GOLDEN_REL_L2, GRAD_REL_L2 } from './tolerances';

const gpu = await testGpu();

const MODELS = [
  {
    name: 'DeiT-III (LayerScale, no class token in the position embedding)', dir: '/tests/fixtures/deit3', file: 'deit3_micro', input: GOLDEN_URL,
    expected: { dim: 96, depth: 4, heads: 3, patchSize: 16, imageSize: 224, numClasses: 10, layerScale: 1e-6, noEmbedClass: true, tokens: 'cls' },
    prefixTokens: 1,
  },
  {
    name: 'DINOv2 with 4 registers (patch 14, LayerScale, no prefix tokens in the position embedding)', dir: '/tests/fixtures/vitreg', file: 'vit_reg_micro',
    input: '/tests/fixtures/vitreg/vit_reg_micro_input.safetensors',
    expected: { dim: 48, depth: 3, heads: 3, patchSize: 14, imageSize: 112, numClasses: 10, layerScale: 1e-5, noEmbedClass: true, regTokens: 4, tokens: 'cls' },
    prefixTokens: 5,
  },
];

for (const m of MODELS) {
  describe(`${m.name} against timm float64`, () => {
    let golden: SafetensorsFile;
    let input: Float32Array;
    let model: Model<ViTConfig>;
    let plan: ForwardPlan;
    beforeAll(async () => {
      let bytes: ArrayBuffer;
      let json: unknown;
      [golden, bytes, json] = await Promise.all([fetchSafetensors(`${m.dir}/${m.file}_golden.safetensors`), fetchBytes(`${m.dir}/${m.file}.safetensors`), fetch(`${m.dir}/${m.file}.json`).then((r) => r.json())]);
      input = (await fetchSafetensors(m.input)).get('input');
      const { config, weights } = loadCheckpoint(bytes, json);
      expect(config).toMatchObject(m.expected);
      model = createModel(gpu, config as ViTConfig, weights);
      plan = await planForward(model, { batch: 2, attention: true });
      gpu.device.pushErrorScope('validation');
      plan.run(input);
      const error = await gpu.device.popErrorScope();
      if (error) throw new Error(`forward pass: ${error.message}`);
    });

    test('logits and features within 1e-5 relative L2 (the bar is 1e-4); attention maps skip the prefix tokens', async () => {
      const logits = relL2(await readTensor(gpu, plan.logits), golden.get('logits'));
      const features = relL2(await readTensor(gpu, plan.features), golden.get('features'));
      console.log(`${m.file}: logits relative L2 ${logits.toExponential(2)}, features ${features.toExponential(2)}`);
      expect(logits).toBeLessThan(GOLDEN_REL_L2);
      expect(features).toBeLessThan(GOLDEN_REL_L2);
      const grid = m.expected.imageSize / m.expected.patchSize;
      expect(plan.planner.attention).toEqual({ prefixTokens: m.prefixTokens, grid: [grid, grid] });
      expect(plan.blocks[0]!.probs!.shape).toEqual([2, m.expected.heads, m.prefixTokens + grid * grid, m.prefixTokens + grid * grid]);
    });

    test('the loss and every parameter\'s gradient through the training plan within 1e-5 relative L2 (the bar is 1e-3)', async () => {
      const training = await planTraining(model, { batch: 2, smoothing: 0 });
      try {
        training.run(input, golden.get('labels'));
        const losses = await readTensor(gpu, training.losses[0]!);
        const loss = (losses[0]! + losses[1]!) / 2;
        expect(Math.abs(loss - golden.get('loss')[0]!) / golden.get('loss')[0]!).toBeLessThan(1e-5);
        const expected = golden.names().filter((n) => n.startsWith('grad.')).map((n) => n.slice(5));
        expect([...training.trainable].sort()).toEqual(expected.sort());
        let worst = { name: '', err: 0 };
        for (const name of training.trainable) {
          const err = relL2(await readTensor(gpu, training.grads.get(name)!), golden.get(`grad.${name}`));
          if (!(err <= worst.err)) worst = { name, err };
        }
        console.log(`${m.file}: loss ${loss.toFixed(6)}; ${training.trainable.length} gradients, worst relative L2 ${worst.err.toExponential(2)} (${worst.name})`);
        expect(worst.err, worst.name).toBeLessThan(GRAD_REL_L2);
      } finally {
        training.destroy();
      }
    });
  });
}
