// timm's ViT options on the GPU against timm's own float64 outputs (tests/fixtures/deit3 and
// tests/fixtures/vitreg, see NOTICE.md), loaded as timm saves them (weights and config.json):
//   DeiT-III (deit3_small_patch16_224 at width 96, depth 4, 3 heads, 10 classes): LayerScale and a
//     position embedding without the class token, for the two golden photos (the DeiT-tiny golden
//     file's input, the same tensor);
//   DINOv2 with registers (vit_small_patch14_reg4_dinov2 at width 48, depth 3, 112 px, 10
//     classes): patch 14, LayerScale, 4 register tokens, a position embedding without prefix tokens.
// Logits and features, then the loss and every parameter's gradient through the training plan.
// DeiT-III at a non-square 160x256 input (timm's dynamic_img_size: the position embedding
// resampled from 14x14 to 10x16, antialiased bicubic). And a DINOv2-style backbone (no
// classifier) through the engine: features and attention, no classes.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Engine } from '../src/engine/engine';
import { initWeights } from '../src/models/init';
import { SWIN_PRESETS } from '../src/models/swin/config';
import { PRESETS } from '../src/models/vit/config';
import { exportWeights } from '../src/training/checkpoint';
import { readTensor } from '../src/gpu/tensor';
import { planForward, type ForwardPlan } from '../src/graph/forward';
import type { Model } from '../src/graph/model';
import type { ViTConfig } from '../src/models/vit/config';
import { createModel } from '../src/models/registry';
import { loadCheckpoint } from '../src/weights/load';
import type { SafetensorsFile } from '../src/weights/safetensors';
import { relL2 } from './helpers/compare';
import { fetchBytes, fetchSafetensors, GOLDEN_URL } from './helpers/fixtures';
import { expectGoldenGradients } from './helpers/golden';
import { testGpu } from './helpers/gpu';
import { GOLDEN_REL_L2 } from './tolerances';

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
      expect(plan.planner.attention).toEqual({ prefixTokens: m.prefixTokens, grid: [grid, grid], patch: m.expected.patchSize, windowed: false });
      expect(plan.blocks[0]!.probs!.shape).toEqual([2, m.expected.heads, m.prefixTokens + grid * grid, m.prefixTokens + grid * grid]);
    });

    test('the loss and every parameter\'s gradient through the training plan within 1e-5 relative L2 (the bar is 1e-3)', async () => {
      await expectGoldenGradients(model, input, golden, m.file);
    });
  });
}

describe('a backbone without a classifier (DINOv2 with registers, numClasses 0) in the engine', () => {
  const config: ViTConfig = { ...PRESETS['dinov2-small-reg4'], imageSize: 28, dim: 48, depth: 2, heads: 3, mlpDim: 96 };
  let engine: Engine;
  beforeAll(async () => {
    engine = await Engine.create();
    // Exported with its config in the metadata, as the engine saves a model, then loaded back.
    await engine.loadModel('backbone', exportWeights(initWeights(config, 1), config), null);
  });
  afterAll(() => engine.destroy());

  test('classify refuses it, naming why; features, tokens and attention (registers skipped) still come out', async () => {
    const input = new Float32Array(3 * 28 * 28).map((_, i) => Math.sin(i / 5));
    await expect(engine.classifyTensor(input, 1, 28)).rejects.toThrow(/backbone without a classifier \(numClasses 0\)/);
    await expect(engine.classifyTensor(input, 1, 28, { logits: true, features: true })).rejects.toThrow(/backbone without a classifier/);
    const [r] = await engine.classifyTensor(input, 1, 28, { features: true, tokens: true, attention: true });
    expect(r!.top).toEqual([]);
    expect(r!.features).toHaveLength(48);
    expect(r!.features!.every(Number.isFinite)).toBe(true);
    // Patch tokens only: the class token and the 4 registers are left out.
    expect(r!.tokens).toHaveLength(4 * 48);
    expect(r!.attention).toMatchObject({ layers: 2, heads: 3, tokens: 9, prefixTokens: 5, grid: [2, 2] });
  });
});

describe('DeiT-III at a non-square 160x256 input against timm float64 (dynamic_img_size)', () => {
  test('logits and features within 1e-5 relative L2; the grid is 10x16; a square-only family refuses', async () => {
    const dir = '/tests/fixtures/deit3';
    const [golden, bytes, json, inputFile] = await Promise.all([
      fetchSafetensors(`${dir}/deit3_micro_160x256_golden.safetensors`), fetchBytes(`${dir}/deit3_micro.safetensors`),
      fetch(`${dir}/deit3_micro.json`).then((r) => r.json()), fetchSafetensors(`${dir}/deit3_micro_160x256_input.safetensors`),
    ]);
    const { config, weights } = loadCheckpoint(bytes, json);
    const model = createModel(gpu, config as ViTConfig, weights);
    const plan = await planForward(model, { batch: 2, imageSize: [160, 256] });
    try {
      expect(plan.input.shape).toEqual([2, 3, 160, 256]);
      expect(plan.planner.attention.grid).toEqual([10, 16]);
      gpu.device.pushErrorScope('validation');
      plan.run(inputFile.get('input'));
      const error = await gpu.device.popErrorScope();
      if (error) throw new Error(`forward pass: ${error.message}`);
      const logits = relL2(await readTensor(gpu, plan.logits), golden.get('logits'));
      const features = relL2(await readTensor(gpu, plan.features), golden.get('features'));
      console.log(`deit3_micro at 160x256: logits relative L2 ${logits.toExponential(2)}, features ${features.toExponential(2)}`);
      expect(logits).toBeLessThan(GOLDEN_REL_L2);
      expect(features).toBeLessThan(GOLDEN_REL_L2);
    } finally {
      plan.destroy();
      model.destroy();
    }
    const swinConfig = SWIN_PRESETS['swin-fashion-mnist'];
    const swin = createModel(gpu, swinConfig, initWeights(swinConfig, 1));
    try {
      await expect(planForward(swin, { batch: 1, imageSize: [28, 56] })).rejects.toThrow(/the swin family takes square images only, not 28x56/);
    } finally {
      swin.destroy();
    }
  });
});
