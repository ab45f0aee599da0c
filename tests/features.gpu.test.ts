// Backbone features through the worker (FeatureOptions): the blocks a user names, split into class
// tokens, registers and the patch map, before or after the final norm, and the pooled features,
// against timm's own outputs: DeiT-tiny's pooled features (tests/fixtures/deit_tiny_golden), a
// Swin's stage outputs (timm's forward_intermediates maps, tests/fixtures/swin), a register-token
// ViT's pooled features (tests/fixtures/vitreg); and a ViT at a non-square size.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { SafetensorsFile } from '../src/weights/safetensors';
import { startEngineWorker, type EngineClient } from '../src/worker/start';
import type { FeaturesResult } from '../src/worker/api';
import { relL2 } from './helpers/compare';
import { fetchBytes, fetchSafetensors, GOLDEN_URL } from './helpers/fixtures';
import { F16_WEIGHTS_TOL, GOLDEN_REL_L2 } from './tolerances';

let engine: EngineClient;
let golden: SafetensorsFile;
beforeAll(async () => {
  engine = startEngineWorker();
  await engine.init();
  golden = await fetchSafetensors(GOLDEN_URL);
});
afterAll(() => engine.terminate());

/** The pooled features of every image, concatenated as timm's (B, F). */
function pooled(results: FeaturesResult[]): Float32Array {
  return Float32Array.from(results.flatMap((r) => Array.from(r.pooled!)));
}

async function loadFixture(dir: string, file: string): Promise<void> {
  const [bytes, json] = await Promise.all([fetchBytes(`${dir}/${file}.safetensors`), fetch(`${dir}/${file}.json`).then((r) => r.json())]);
  await engine.loadModel(file, bytes, json);
}

describe('features', () => {
  test('DeiT-tiny: pooled equals timm\'s features; the last block after the norm holds it as its class token; a middle block before it', async () => {
    await engine.loadModelFromUrl('/models/deit-tiny/');
    const input = golden.get('input');
    const results = await engine.featuresTensor(input.slice(), 2, 224, { blocks: [-1, 5] });
    const err = relL2(pooled(results), golden.get('features'));
    console.log(`DeiT-tiny pooled features relative L2 ${err.toExponential(2)}`);
    expect(err).toBeLessThan(F16_WEIGHTS_TOL.featuresRelL2);
    for (const [b, r] of results.entries()) {
      const [last, middle] = r.maps;
      expect(last).toMatchObject({ block: 11, normed: true, grid: [14, 14], dim: 192 });
      expect(last!.patches).toHaveLength(14 * 14 * 192);
      expect(last!.registers).toHaveLength(0);
      // The class token after the final norm is what the head reads: the same kernel on the same values.
      expect(last!.classTokens, `image ${b}`).toEqual(r.pooled);
      expect(middle).toMatchObject({ block: 5, normed: true, grid: [14, 14], dim: 192 });
      expect(relL2(middle!.patches, last!.patches)).toBeGreaterThan(0.1);
    }
    // Without the norm, the same block's map is the block's raw output.
    const [raw] = await engine.featuresTensor(input.slice(0, 3 * 224 * 224), 1, 224, { blocks: [5], norm: false, pooled: false });
    expect(raw!.pooled).toBeUndefined();
    expect(raw!.maps[0]).toMatchObject({ block: 5, normed: false });
    expect(relL2(raw!.maps[0]!.patches, results[0]!.maps[1]!.patches)).toBeGreaterThan(0.1);
    // Classification runs on the same model afterwards, with its head.
    const logits = await engine.classifyTensor(input.slice(), 2, 224, { logits: true });
    expect(relL2(Float32Array.from(logits.flatMap((r) => Array.from(r.logits!))), golden.get('logits'))).toBeLessThan(F16_WEIGHTS_TOL.logitsRelL2);
  });

  test('Swin: each stage\'s last block equals timm\'s stage output, the final norm only on the last stage, pooled equals timm\'s', async () => {
    const dir = '/tests/fixtures/swin';
    await loadFixture(dir, 'swin_micro');
    const stages = await fetchSafetensors(`${dir}/swin_micro_golden.safetensors`);
    const info = await engine.featuresTensor(golden.get('input').slice(), 2, 224, { blocks: [1, 3, 5, 7], norm: false });
    const normed = await engine.featuresTensor(golden.get('input').slice(), 2, 224, { blocks: [3, 7] });
    const sizes: [number, number, number][] = [[56, 56, 16], [28, 28, 32], [14, 14, 64], [7, 7, 128]];
    sizes.forEach(([h, w, C], s) => {
      const ref = stages.get(`stage.${s}`); // (B, H, W, C)
      const got = Float32Array.from(info.flatMap((r) => Array.from(r.maps[s]!.patches)));
      const err = relL2(got, ref);
      console.log(`Swin stage ${s} (${h}x${w}x${C}) map relative L2 ${err.toExponential(2)}`);
      expect(err, `stage ${s}`).toBeLessThan(GOLDEN_REL_L2);
      expect(info[0]!.maps[s]).toMatchObject({ block: 2 * s + 1, normed: false, grid: [h, w], dim: C });
    });
    expect(normed[0]!.maps.map((m) => m.normed)).toEqual([false, true]);
    expect(normed[0]!.maps[0]!.patches).toEqual(info[0]!.maps[1]!.patches);
    expect(relL2(pooled(normed), stages.get('features'))).toBeLessThan(GOLDEN_REL_L2);
    // The pooled features are the mean of the normed last map's tokens.
    const last = normed[1]!.maps[1]!;
    const mean = new Float64Array(128);
    for (let t = 0; t < 49; t++) for (let c = 0; c < 128; c++) mean[c]! += last.patches[t * 128 + c]! / 49;
    expect(relL2(Float32Array.from(mean), normed[1]!.pooled!)).toBeLessThan(1e-5);
  });

  test('register-token ViT: class token and four registers split from the patches; pooled equals timm\'s', async () => {
    const dir = '/tests/fixtures/vitreg';
    await loadFixture(dir, 'vit_reg_micro');
    const [ref, input] = await Promise.all([fetchSafetensors(`${dir}/vit_reg_micro_golden.safetensors`), fetchSafetensors(`${dir}/vit_reg_micro_input.safetensors`)]);
    const results = await engine.featuresTensor(input.get('input'), 2, 112, { blocks: [-1, 0] });
    expect(relL2(pooled(results), ref.get('features'))).toBeLessThan(GOLDEN_REL_L2);
    const [last, first] = results[1]!.maps;
    expect(last).toMatchObject({ block: 2, normed: true, grid: [8, 8], dim: 48 });
    expect(last!.classTokens).toEqual(results[1]!.pooled);
    expect(last!.registers).toHaveLength(4 * 48);
    expect(last!.patches).toHaveLength(64 * 48);
    expect(first).toMatchObject({ block: 0, normed: true });
  });

  test('DeiT-III at a non-square 160x256: classify matches timm\'s logits and features come as a 10x16 map', async () => {
    const dir = '/tests/fixtures/deit3';
    await loadFixture(dir, 'deit3_micro');
    const [ref, input] = await Promise.all([fetchSafetensors(`${dir}/deit3_micro_160x256_golden.safetensors`), fetchSafetensors(`${dir}/deit3_micro_160x256_input.safetensors`)]);
    const results = await engine.classifyTensor(input.get('input').slice(), 2, [160, 256], { logits: true });
    const logits = Float32Array.from(results.flatMap((r) => Array.from(r.logits!)));
    expect(relL2(logits, ref.get('logits'))).toBeLessThan(GOLDEN_REL_L2);
    const features = await engine.featuresTensor(input.get('input').slice(), 2, [160, 256], { blocks: [-1] });
    expect(relL2(pooled(features), ref.get('features'))).toBeLessThan(GOLDEN_REL_L2);
    expect(features[0]!.maps[0]).toMatchObject({ grid: [10, 16], dim: 96 });
    // A size that is not a multiple of the patch is refused by name.
    await expect(engine.classifyTensor(new Float32Array(3 * 100 * 256), 1, [100, 256])).rejects.toThrow(/image size 100 is not a positive multiple of the patch size 16/);
  });

  test('a block that does not exist is refused by name, and the model stays loaded', async () => {
    await loadFixture('/tests/fixtures/deit3', 'deit3_micro');
    const input = golden.get('input').slice(0, 3 * 224 * 224);
    await expect(engine.featuresTensor(input.slice(), 1, 224, { blocks: [4] })).rejects.toThrow(/features: block 4 does not exist: this model has 4 blocks \(0 to 3, or -4 to -1 from the end\)/);
    await expect(engine.featuresTensor(input.slice(), 1, 224, { blocks: [-5] })).rejects.toThrow(/block -5 does not exist/);
    await expect(engine.featuresTensor(input.slice(), 1, 224, { blocks: [] })).rejects.toThrow(/blocks is empty/);
    await expect(engine.featuresTensor(input.slice(), 1, 224, { blocks: [1.5] })).rejects.toThrow(/block 1.5 does not exist/);
    const [r] = await engine.featuresTensor(input.slice(), 1, 224, { blocks: [-1] });
    expect(r!.maps[0]!.block).toBe(3);
  });
});
