// Fresh weights as timm initialises a ViT, and where fine-tuning starts: which head it keeps.
import { describe, expect, test } from 'vitest';
import { PRESETS, type ViTConfig } from '../src/models/vit/config';
import { fineTuneStart, initWeights } from '../src/models/init';
import { vit } from '../src/models/vit/family';

const CONFIG = { ...PRESETS['fashion-mnist']!, numClasses: 3, labels: ['a', 'b', 'c'] };

describe('initWeights', () => {
  const weights = initWeights(CONFIG, 1);

  test('every parameter, with its shape: truncated normal (std 0.02, within 2 std), biases 0, norm weights 1', () => {
    expect([...weights.keys()]).toEqual(vit.parameterShapes(CONFIG).map(([n]) => n));
    for (const [name, shape] of vit.parameterShapes(CONFIG)) {
      const { data } = weights.get(name)!;
      expect(data.length, name).toBe(shape.reduce((a, b) => a * b, 1));
      if (name.endsWith('.bias')) expect(data.every((v) => v === 0), name).toBe(true);
      else if (/norm\d?\.weight$/.test(name)) expect(data.every((v) => v === 1), name).toBe(true);
      else expect(data.every((v) => Math.abs(v) <= 0.04), name).toBe(true);
    }
    const w = weights.get('blocks.0.mlp.fc1.weight')!.data;
    const std = Math.sqrt(w.reduce((a, v) => a + v * v, 0) / w.length);
    // A normal truncated at 2 std keeps 77.4% of its variance: std 0.02 * 0.880 = 0.0176 (8192
    // draws: the estimate's own spread is about 1.4e-4).
    expect(std).toBeGreaterThan(0.0171);
    expect(std).toBeLessThan(0.0181);
  });

  test('the same seed gives the same weights, another seed others', () => {
    expect(initWeights(CONFIG, 1).get('head.weight')!.data).toEqual(weights.get('head.weight')!.data);
    expect(initWeights(CONFIG, 2).get('head.weight')!.data).not.toEqual(weights.get('head.weight')!.data);
  });

  test('`include` limits it to the parameters named', () => {
    expect([...initWeights(CONFIG, 1, (n) => n.startsWith('head')).keys()]).toEqual(['head.weight', 'head.bias']);
  });
});

describe('fineTuneStart', () => {
  const trained = initWeights(CONFIG, 3);
  const row = (w: Float32Array, i: number, width: number) => Array.from(w.subarray(i * width, (i + 1) * width));

  test('the model\'s own classes, in order: every tensor as it was, the head included', () => {
    const { config, weights } = fineTuneStart(CONFIG, trained, ['a', 'b', 'c'], 9);
    expect(config.numClasses).toBe(3);
    for (const [name, w] of trained) expect(weights.get(name)!.data, name).toEqual(w.data);
  });

  test('known classes keep their trained rows wherever they now are; new classes get fresh rows', () => {
    const classes = ['c', 'new', 'a', 'other'];
    const { config, weights } = fineTuneStart(CONFIG, trained, classes, 9);
    expect(config).toMatchObject({ numClasses: 4, labels: classes });
    expect([...weights.keys()].sort()).toEqual([...trained.keys()].sort());
    for (const [name, w] of trained) if (!name.startsWith('head')) expect(weights.get(name), name).toBe(w);
    const D = CONFIG.dim;
    const [W, b] = [weights.get('head.weight')!, weights.get('head.bias')!];
    const [W0, b0] = [trained.get('head.weight')!.data, trained.get('head.bias')!.data];
    expect(W.shape).toEqual([4, D]);
    expect(row(W.data, 0, D)).toEqual(row(W0, 2, D)); // c
    expect(row(W.data, 2, D)).toEqual(row(W0, 0, D)); // a
    expect([b.data[0], b.data[2]]).toEqual([b0[2], b0[0]]);
    // Fresh rows: timm's initialisation (not a copy of any trained row), biases zero.
    for (const i of [1, 3]) {
      for (let j = 0; j < 3; j++) expect(row(W.data, i, D)).not.toEqual(row(W0, j, D));
      expect(row(W.data, i, D).every((v) => Math.abs(v) <= 0.04 && v !== 0)).toBe(true);
      expect(b.data[i]).toBe(0);
    }
  });

  test('a model without class names gets a fresh head', () => {
    const { labels: _, ...unnamed } = CONFIG;
    const { weights } = fineTuneStart(unnamed, trained, ['a', 'b', 'c'], 9);
    expect(weights.get('head.weight')!.data).toEqual(initWeights({ ...CONFIG, numClasses: 3 }, 9, (n) => n.startsWith('head')).get('head.weight')!.data);
  });
});

describe('the timm ViT options', () => {
  test('LayerScale starts at the config\'s init_values (DeiT-III 1e-6, DINOv2 1e-5); registers and tokens like the class token; gammas are not decayed', () => {
    for (const [preset, value] of [['deit3-small', 1e-6], ['dinov2-small-reg4', 1e-5]] as const) {
      const c: ViTConfig = { ...PRESETS[preset], depth: 2, dim: 48, heads: 3, mlpDim: 96, imageSize: 28, patchSize: 14 };
      const w = initWeights(c, 2);
      for (const name of ['blocks.0.ls1.gamma', 'blocks.1.ls2.gamma']) expect(w.get(name)!.data.every((v) => v === Math.fround(value)), `${preset} ${name}`).toBe(true);
      expect(vit.isNoDecay('blocks.0.ls1.gamma')).toBe(true);
      expect(vit.isNoDecay('blocks.0.attn.qkv.weight')).toBe(false);
    }
    const regConfig: ViTConfig = { ...PRESETS['dinov2-small-reg4'], depth: 1, dim: 48, heads: 3, mlpDim: 96, imageSize: 28 };
    const reg = initWeights(regConfig, 3).get('reg_token')!;
    expect(reg.shape).toEqual([1, 4, 48]);
    expect(reg.data.some((v) => v !== 0) && reg.data.every((v) => Math.abs(v) <= 0.04)).toBe(true);
    expect(vit.isNoDecay('reg_token')).toBe(true);
  });

  test('fine-tuning a backbone without a classifier (DINOv2) starts a fresh head for the classes', () => {
    const c: ViTConfig = { ...PRESETS['dinov2-small'], depth: 1, dim: 48, heads: 3, mlpDim: 96, imageSize: 28 };
    const body = initWeights(c, 4);
    expect(body.has('head.weight')).toBe(false);
    const { config, weights } = fineTuneStart(c, body, ['cat', 'dog']);
    expect(config.numClasses).toBe(2);
    expect(weights.get('head.weight')!.shape).toEqual([2, 48]);
    expect(weights.get('blocks.0.ls1.gamma')!.data).toEqual(body.get('blocks.0.ls1.gamma')!.data);
    expect([...weights.keys()].sort()).toEqual(vit.parameterShapes(config).map(([n]) => n).sort());
  });
});
