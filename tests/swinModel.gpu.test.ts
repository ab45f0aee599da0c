// A Swin Transformer on the GPU against timm's own float64 outputs (tests/fixtures/swin, see
// NOTICE.md): timm's SwinTransformer with embed 16, depths 2-2-2-2, heads 1-2-4-8, window 7, on
// seeded random weights, for the two golden photos (the DeiT-tiny golden file's input). Logits,
// pooled features, every stage's output, the attention of a shifted block and of the third
// stage's first block, the loss and every parameter's gradient; and the same weights under Hugging
// Face's names.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readTensor } from '../src/gpu/tensor';
import { planForward, type ForwardPlan } from '../src/graph/forward';
import type { Model } from '../src/graph/model';
import { swinStages, type SwinConfig } from '../src/models/swin/config';
import { createModel } from '../src/models/registry';
import { loadCheckpoint } from '../src/weights/load';
import { parseSafetensors, serializeSafetensors, type SafetensorsFile } from '../src/weights/safetensors';
import { startEngineWorker, type EngineClient } from '../src/worker/start';
import { compare, relL2 } from './helpers/compare';
import { fetchBytes, fetchSafetensors, GOLDEN_URL } from './helpers/fixtures';
import { testGpu } from './helpers/gpu';
import { expectGoldenGradients } from './helpers/golden';
import { toSwinHuggingFace } from './helpers/swin';
import { GOLDEN_REL_L2, TOL } from './tolerances';

const gpu = await testGpu();
const DIR = '/tests/fixtures/swin';

describe('Swin (timm, embed 16, depths 2-2-2-2) against timm float64', () => {
  let golden: SafetensorsFile;
  let input: Float32Array;
  let bytes: ArrayBuffer;
  let json: unknown;
  let model: Model<SwinConfig>;
  let plan: ForwardPlan;
  beforeAll(async () => {
    [golden, bytes, json] = await Promise.all([fetchSafetensors(`${DIR}/swin_micro_golden.safetensors`), fetchBytes(`${DIR}/swin_micro.safetensors`), fetch(`${DIR}/swin_micro.json`).then((r) => r.json())]);
    input = (await fetchSafetensors(GOLDEN_URL)).get('input');
    const { config, weights } = loadCheckpoint(bytes, json);
    expect(config).toMatchObject({ family: 'swin', embedDim: 16, depths: [2, 2, 2, 2], heads: [1, 2, 4, 8], window: 7, patchSize: 4, imageSize: 224, numClasses: 10, eps: 1e-5 });
    model = createModel(gpu, config as SwinConfig, weights);
    plan = await planForward(model, { batch: 2, attention: true });
    gpu.device.pushErrorScope('validation');
    plan.run(input);
    const error = await gpu.device.popErrorScope();
    if (error) throw new Error(`forward pass: ${error.message}`);
  });

  test('logits and pooled features within 1e-5 relative L2 (the bar is 1e-4)', async () => {
    const logits = relL2(await readTensor(gpu, plan.logits), golden.get('logits'));
    const features = relL2(await readTensor(gpu, plan.features), golden.get('features'));
    console.log(`Swin logits relative L2 ${logits.toExponential(2)}, features ${features.toExponential(2)}`);
    expect(logits).toBeLessThan(GOLDEN_REL_L2);
    expect(features).toBeLessThan(GOLDEN_REL_L2);
  });

  test('every stage\'s output within 1e-5 relative L2 (the bar is 1e-4)', async () => {
    let last = -1;
    for (const [s, stage] of swinStages(model.config).entries()) {
      last += stage.depth;
      const err = relL2(await readTensor(gpu, plan.blocks[last]!.out), golden.get(`stage.${s}`));
      console.log(`stage ${s} (${stage.size.join('x')}x${stage.dim}): relative L2 ${err.toExponential(2)}`);
      expect(err, `stage ${s}`).toBeLessThan(GOLDEN_REL_L2);
    }
  });

  test('attention of the shifted block layers.0.blocks.1 and of layers.2.blocks.0 within 1e-5 absolute', async () => {
    for (const [block, name] of [[1, 'layers.0.blocks.1'], [4, 'layers.2.blocks.0']] as const) {
      const ref = golden.get(`attention.${name}`);
      const got = await readTensor(gpu, plan.blocks[block]!.probs!);
      expect(got.length).toBe(ref.length);
      const cmp = compare(got, ref, TOL.goldenAttention);
      console.log(`${name} attention: max abs ${cmp.maxAbs.toExponential(2)}`);
      if (cmp.mismatches) throw new Error(`${name}: ${cmp.report}`);
    }
  });

  test('the loss and every parameter\'s gradient within 1e-5 relative L2 (the bar is 1e-3)', async () => {
    await expectGoldenGradients(model, input, golden, 'Swin');
  });

  test('the same weights under Hugging Face\'s names (and its config) give the same logits', async () => {
    const { weights } = loadCheckpoint(bytes, json);
    const hf = toSwinHuggingFace(weights);
    const hfConfig = {
      model_type: 'swin', architectures: ['SwinForImageClassification'], image_size: 224, patch_size: 4, num_channels: 3, embed_dim: 16,
      depths: [2, 2, 2, 2], num_heads: [1, 2, 4, 8], window_size: 7, mlp_ratio: 4, qkv_bias: true, hidden_act: 'gelu', layer_norm_eps: 1e-5,
      use_absolute_embeddings: false, id2label: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [String(i), `class ${i}`])),
    };
    const loaded = loadCheckpoint(serializeSafetensors([...hf].map(([name, t]) => ({ name, ...t }))), hfConfig);
    const other = createModel(gpu, loaded.config as SwinConfig, loaded.weights);
    const otherPlan = await planForward(other, { batch: 2 });
    try {
      otherPlan.run(input);
      expect(Array.from(await readTensor(gpu, otherPlan.logits))).toEqual(Array.from(await readTensor(gpu, plan.logits)));
    } finally {
      otherPlan.destroy();
      other.destroy();
    }
  });
});

describe('Swin through the worker', () => {
  let engine: EngineClient;
  beforeAll(async () => {
    engine = startEngineWorker();
    await engine.init();
  });
  afterAll(() => engine.terminate());

  test('loads with its timm config.json; logits and the two blocks\' attention match timm; export carries timm\'s config and reloads', async () => {
    const [bytes, json, golden, input] = await Promise.all([
      fetchBytes(`${DIR}/swin_micro.safetensors`), fetch(`${DIR}/swin_micro.json`).then((r) => r.json()), fetchSafetensors(`${DIR}/swin_micro_golden.safetensors`),
      fetchSafetensors(GOLDEN_URL).then((g) => g.get('input')),
    ]);
    const info = await engine.loadModel('swin micro', bytes, json);
    expect(info.family).toBe('swin');
    expect(info.blockHeads).toEqual([1, 1, 2, 2, 4, 4, 8, 8]);
    const results = await engine.classifyTensor(input, 2, 224, { logits: true, attention: true });
    const logits = Float32Array.from(results.flatMap((r) => Array.from(r.logits!)));
    expect(relL2(logits, golden.get('logits'))).toBeLessThan(GOLDEN_REL_L2);
    const a = results[0]!.attention!;
    expect(a.prefixTokens).toBe(0);
    expect(a.shapes.map((s) => s.windows)).toEqual([64, 64, 16, 16, 4, 4, 1, 1]);
    expect(a.shapes[1]).toEqual({ grid: [56, 56], window: [7, 7], shift: [3, 3], heads: 1, windows: 64, tokens: 49 });
    expect(a.shapes[7]).toEqual({ grid: [7, 7], window: [7, 7], shift: [0, 0], heads: 8, windows: 1, tokens: 49 });
    for (const [block, name] of [[1, 'layers.0.blocks.1'], [4, 'layers.2.blocks.0']] as const) {
      const got = Float32Array.from(results.flatMap((r) => Array.from(r.attention!.probs[block]!)));
      const cmp = compare(got, golden.get(`attention.${name}`), TOL.goldenAttention);
      if (cmp.mismatches) throw new Error(`${name} through the worker: ${cmp.report}`);
    }
    await expect(engine.classifyTensor(input, 2, 224, { rollout: true })).rejects.toThrow(/rollout needs global attention with a class token/);

    const exported = await engine.exportModel();
    const file = parseSafetensors(exported);
    const config = JSON.parse(file.metadata.config!) as Record<string, unknown>;
    expect(config).toMatchObject({
      architecture: 'swin_tiny_patch4_window7_224',
      model_args: { img_size: 224, patch_size: 4, in_chans: 3, embed_dim: 16, depths: [2, 2, 2, 2], num_heads: [1, 2, 4, 8], window_size: 7, mlp_ratio: 4, num_classes: 10 },
    });
    expect(file.names().every((n) => !n.startsWith('swin.'))).toBe(true);
    await engine.loadModel('exported', exported, null);
    const again = await engine.classifyTensor(input, 2, 224, { logits: true });
    expect(Float32Array.from(again.flatMap((r) => Array.from(r.logits!)))).toEqual(logits);
  });
});
