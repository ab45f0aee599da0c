// Reading Swin checkpoints without a GPU: the config from timm's config.json and the tensors,
// Hugging Face's names, and the bad inputs each refused with a message that names the field.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import type { HostWeights } from '../src/graph/model';
import { checkpointFormat } from '../src/models/registry';
import { SWIN_PRESETS, swinStages, validateSwinConfig, type SwinConfig } from '../src/models/swin/config';
import { swinConfigFrom } from '../src/models/swin/keys';
import { swinWindowLayout } from '../src/kernels/swin';
import { swinParameterShapes } from '../src/models/swin/params';
import { loadCheckpoint } from '../src/weights/load';
import { serializeSafetensors } from '../src/weights/safetensors';
import { toSwinHuggingFace } from './helpers/swin';

const root = (p: string) => fileURLToPath(new URL(`../${p}`, import.meta.url));
const bytes = readFileSync(root('tests/fixtures/swin/swin_micro.safetensors'));
const json: unknown = JSON.parse(readFileSync(root('tests/fixtures/swin/swin_micro.json'), 'utf8'));
const micro = () => loadCheckpoint(bytes, json);
const file = (weights: HostWeights | Map<string, { shape: readonly number[]; data: Float32Array }>) =>
  serializeSafetensors([...weights].map(([name, t]) => ({ name, shape: t.shape, data: t.data })));

describe('Swin config', () => {
  test('timm\'s config.json: model_args over the architecture\'s defaults, the rest from the tensors', () => {
    const { config, weights } = micro();
    expect(config).toEqual({
      family: 'swin', imageSize: 224, patchSize: 4, inChannels: 3, embedDim: 16, depths: [2, 2, 2, 2], heads: [1, 2, 4, 8], window: 7, mlpRatio: 4,
      qkvBias: true, eps: 1e-5, numClasses: 10, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], cropPct: 0.9,
    });
    expect(weights.size).toBe(swinParameterShapes(config as SwinConfig).length);
    // Without a config the tensors and timm's defaults give the same model.
    expect(loadCheckpoint(bytes, null).config).toEqual(config);
  });

  test('stages: resolution halves, the window clamps to the map and stops shifting there', () => {
    // Size, width, window, and the shift of the stage's odd blocks.
    const stages = (c: SwinConfig) => swinStages(c).map((s) => [s.size[0], s.dim, s.window, swinWindowLayout(s.size[0], s.size[1], c.window, true).shift[0]]);
    expect(stages(SWIN_PRESETS['swin-tiny'])).toEqual([[56, 96, 7, 3], [28, 192, 7, 3], [14, 384, 7, 3], [7, 768, 7, 0]]);
    expect(stages(SWIN_PRESETS['swin-base-384'])).toEqual([[96, 128, 12, 6], [48, 256, 12, 6], [24, 512, 12, 6], [12, 1024, 12, 0]]);
    expect(stages(SWIN_PRESETS['swin-fashion-mnist'])).toEqual([[14, 16, 7, 3], [7, 32, 7, 0]]);
    // 28 px with patch 4: 7x7 tokens cannot be merged 2x2.
    expect(() => validateSwinConfig({ ...SWIN_PRESETS['swin-fashion-mnist'], patchSize: 4 })).toThrow(/^config: image size 28: stage 0's 7x7 tokens cannot be merged 2x2 \(odd side\)$/);
  });

  test('preset parameter counts as timm reports them (Swin-T 28,288,354; Swin-S 49,606,258; Swin-B 87,768,224)', () => {
    const count = (c: SwinConfig) => swinParameterShapes(c).reduce((n, [, s]) => n + s.reduce((a, b) => a * b, 1), 0);
    expect(count(SWIN_PRESETS['swin-tiny'])).toBe(28_288_354);
    expect(count(SWIN_PRESETS['swin-small'])).toBe(49_606_258);
    expect(count(SWIN_PRESETS['swin-base'])).toBe(87_768_224);
  });

  test('Hugging Face names and config give the same tensors and config', () => {
    const { config, weights } = micro();
    const hf = toSwinHuggingFace(weights);
    const loaded = loadCheckpoint(file(hf), { model_type: 'swin', embed_dim: 16, depths: [2, 2, 2, 2], num_heads: [1, 2, 4, 8], window_size: 7, image_size: 224, layer_norm_eps: 1e-5 });
    expect(loaded.config).toMatchObject({ ...config, cropPct: 0.9 });
    for (const [name, t] of weights) expect(loaded.weights.get(name)!.data, name).toEqual(t.data);
  });
});

describe('bad Swin input, refused with the field named', () => {
  test('heads that do not divide a stage\'s width', () => {
    expect(() => validateSwinConfig({ ...SWIN_PRESETS['swin-tiny'], heads: [3, 6, 12, 25] })).toThrow(/heads\[3\] = 25 does not divide stage 3's width 768/);
    expect(() => validateSwinConfig({ ...SWIN_PRESETS['swin-tiny'], heads: [3, 6, 12] })).toThrow(/heads needs one entry per stage \(4\)/);
  });

  test('a relative position bias table of the wrong size', () => {
    const { weights } = micro();
    const bad = new Map(weights);
    bad.set('layers.1.blocks.1.attn.relative_position_bias_table', { shape: [121, 2], data: new Float32Array(242) });
    expect(() => loadCheckpoint(file(bad), json)).toThrow(/layers\.1\.blocks\.1\.attn\.relative_position_bias_table has shape \[121, 2\], the config needs \[169, 2\]/);
    // A first-block table that no window gives.
    const odd = new Map(weights);
    odd.set('layers.0.blocks.0.attn.relative_position_bias_table', { shape: [168, 1], data: new Float32Array(168) });
    expect(() => loadCheckpoint(file(odd), json)).toThrow(/has 168 rows, not \(2 \* window - 1\)\^2/);
    // A 121-row table is a 6x6 window: at 224 px with window 7 the first stage needs 169.
    const six = new Map(weights);
    six.set('layers.0.blocks.0.attn.relative_position_bias_table', { shape: [121, 1], data: new Float32Array(121) });
    expect(() => loadCheckpoint(file(six), json)).toThrow(/has 121 rows; a 7x7 window \(window 7 at image size 224\) needs 169/);
  });

  test('a config that disagrees with the tensors names the field', () => {
    const stated = { ...(json as Record<string, unknown>), model_args: { embed_dim: 32, depths: [2, 2, 2, 2], num_heads: [1, 2, 4, 8] } };
    expect(() => loadCheckpoint(bytes, stated)).toThrow(/disagrees with the weights: embedDim 32 \(weights: 16\)/);
  });

  test('a checkpoint mixing the families, or a config of the other family', () => {
    const { weights } = micro();
    const mixed = new Map(weights);
    mixed.set('blocks.0.norm1.weight', { shape: [16], data: new Float32Array(16) });
    expect(() => loadCheckpoint(file(mixed), null)).toThrow(/mixes the tensors of a ViT and a Swin/);
    expect(() => loadCheckpoint(bytes, { architecture: 'vit_base_patch16_224' })).toThrow(/the config describes a ViT but the tensors are a Swin's/);
    expect(() => checkpointFormat({ architecture: 'swin_tiny_patch4_window7_224' }, ['blocks.0.norm1.weight'])).toThrow(/the config describes a Swin but the tensors are a ViT's/);
  });

  test('the original Microsoft layout is refused by name', () => {
    const { weights } = micro();
    const ms = new Map([...weights].map(([n, t]) => [n === 'head.fc.weight' ? 'head.weight' : n === 'head.fc.bias' ? 'head.bias' : n, t]));
    ms.set('layers.0.blocks.1.attn_mask', { shape: [64, 49, 49], data: new Float32Array(64 * 49 * 49) });
    expect(() => loadCheckpoint(file(ms), null)).toThrow(/original Microsoft Swin layout/);
  });

  test('an architecture name this engine does not know', () => {
    expect(() => swinConfigFrom({ architecture: 'swinv2_tiny_window8_256' }, micro().weights)).toThrow(/architecture "swinv2_tiny_window8_256" is not a Swin this engine knows/);
  });
});
