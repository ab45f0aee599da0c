// The ViT presets' parameter counts against timm's (`sum(p.numel() for p in model.parameters())`
// with 1000 classes for the classifiers), so each preset is the architecture it is named after.
import { describe, expect, test } from 'vitest';
import { PRESETS, type PresetName, type ViTConfig } from '../src/models/vit/config';
import { vit } from '../src/models/vit/family';

const count = (c: ViTConfig) => vit.parameterShapes(c).reduce((n, [, shape]) => n + shape.reduce((a, b) => a * b, 1), 0);

describe('preset parameter counts', () => {
  test.each([
    ['vit-tiny', 5_717_416], // vit_tiny_patch16_224 (and deit_tiny_patch16_224)
    ['vit-small', 22_050_664], // vit_small_patch16_224
    ['vit-base', 86_567_656], // vit_base_patch16_224
    ['vit-large', 304_326_632], // vit_large_patch16_224
    // vit_huge_patch14_224 with a 1000-class head; timm's 630,764,800 is the same model without one
    // (its only weights, orig_in21k, ship with num_classes=0), checked below.
    ['vit-huge', 632_045_800],
    ['deit-tiny', 5_717_416],
    ['deit-tiny-distilled', 5_910_800], // deit_tiny_distilled_patch16_224
    // The CIFAR-10 showcase: patch embedding 49,408 + position embedding 16 x 256 + 2 blocks of
    // 395,776 + head 2,570; no class token, no final norm.
    ['cifar-small', 847_626],
    // The post-norm two-class ViT: patch embedding 590,592 + position embedding 196 x 768 (no class
    // row) + class token 768 + 12 blocks of 7,087,872 + head 1,538; no final norm.
    ['vit-postnorm-2class', 85_797_890],
  ] as [PresetName, number][])('%s has %i parameters', (name, n) => {
    expect(count(PRESETS[name])).toBe(n);
  });

  test('vit-huge without its head is timm\'s vit_huge_patch14_224 as created by default: 630,764,800', () => {
    expect(count({ ...PRESETS['vit-huge'], numClasses: 0 })).toBe(630_764_800);
  });

  // timm's model cards round to 10k: DeiT-III S/B 22.06M / 86.59M; DINOv2 S/B/L (no head,
  // 518 px: 37 x 37 patches) 22.06M / 86.58M / 304.37M, the same with 4 registers.
  test.each([
    ['deit3-small', 22.06], ['deit3-base', 86.59],
    ['dinov2-small', 22.06], ['dinov2-base', 86.58], ['dinov2-large', 304.37],
    ['dinov2-small-reg4', 22.06], ['dinov2-base-reg4', 86.58], ['dinov2-large-reg4', 304.37],
  ] as [PresetName, number][])('%s has %sM parameters', (name, millions) => {
    expect(Math.round(count(PRESETS[name]) / 1e4) / 100).toBe(millions);
  });

  test('the post-norm two-class ViT: post-norm blocks, no final norm, no class row in the position embedding', () => {
    const c = PRESETS['vit-postnorm-2class'];
    expect(c).toMatchObject({ norm: 'post', noEmbedClass: true, eps: 1e-5, numClasses: 2, tokens: 'cls' });
    const shapes = new Map(vit.parameterShapes(c));
    expect(shapes.get('pos_embed')).toEqual([1, 196, 768]);
    expect(shapes.has('norm.weight')).toBe(false);
    expect(shapes.get('head.weight')).toEqual([2, 768]);
  });

  test('what separates DeiT-III and DINOv2 from a plain ViT of their width, tensor by tensor', () => {
    const D = 384;
    // DeiT-III-S: LayerScale's two gammas per block; the position embedding loses the class row.
    expect(count(PRESETS['deit3-small']) - count(PRESETS['vit-small'])).toBe(2 * 12 * D - D);
    // DINOv2-S: patch 14 at 518 px, LayerScale, no head; with registers: 4 tokens, no class row.
    const shapes = new Map(vit.parameterShapes(PRESETS['dinov2-small']));
    expect(shapes.get('pos_embed')).toEqual([1, 1 + 37 * 37, D]);
    expect(shapes.get('patch_embed.proj.weight')).toEqual([D, 3, 14, 14]);
    expect(shapes.get('blocks.11.ls2.gamma')).toEqual([D]);
    expect(shapes.has('head.weight')).toBe(false);
    const reg = new Map(vit.parameterShapes(PRESETS['dinov2-small-reg4']));
    expect(reg.get('pos_embed')).toEqual([1, 37 * 37, D]);
    expect(reg.get('reg_token')).toEqual([1, 4, D]);
    expect(count(PRESETS['dinov2-small-reg4']) - count(PRESETS['dinov2-small'])).toBe(3 * D);
    for (const name of Object.keys(PRESETS) as PresetName[]) expect(() => vit.validate(PRESETS[name]), name).not.toThrow();
  });
});
