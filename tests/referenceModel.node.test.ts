// The float64 reference model: its forward against timm's golden outputs for DeiT-tiny, its
// hand-written backward against central finite differences on tiny models of every variant, and a
// forward at an image size other than the training one.
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { PRESETS, type ViTConfig } from '../src/models/vit/config';
import { vit } from '../src/models/vit/family';
import { resizePosEmbed } from '../src/models/vit/posEmbed';
import { parseConfig } from '../src/weights/config';
import { relL2 } from './helpers/compare';
import { f64, randn } from './helpers/random';
import { crossEntropyRef, type CETarget } from './reference/ops';
import { vitForwardRef, vitLossAndGradsRef } from './reference/vit';
import { F16_WEIGHTS_TOL } from './tolerances';

// ---- a minimal safetensors reader (F32 and F16) ----

/** An IEEE half (sign, 5-bit exponent, 10-bit fraction) as a number. */
function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

interface Tensors { shapes: Map<string, number[]>; data: Map<string, Float32Array> }

function readSafetensors(path: string): Tensors {
  const buf = readFileSync(path);
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen))) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const base = 8 + headerLen;
  const shapes = new Map<string, number[]>();
  const data = new Map<string, Float32Array>();
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (e.dtype !== 'F32' && e.dtype !== 'F16') throw new Error(`${path}: ${name} is ${e.dtype}, only F32 and F16 are read here`);
    const [start, end] = e.data_offsets;
    const size = e.dtype === 'F32' ? 4 : 2;
    const out = new Float32Array((end - start) / size);
    for (let i = 0; i < out.length; i++) out[i] = size === 4 ? view.getFloat32(base + start + 4 * i, true) : halfToNumber(view.getUint16(base + start + 2 * i, true));
    shapes.set(name, e.shape);
    data.set(name, out);
  }
  return { shapes, data };
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

describe('golden: DeiT-tiny against timm', () => {
  test('logits, features and the stored layers\' attention maps, at the bounds of the F16 weights', () => {
    const c = PRESETS['deit-tiny'];
    const weights = readSafetensors(new URL('../public/models/deit-tiny/model.safetensors', import.meta.url).pathname);
    const golden = readSafetensors(new URL('./fixtures/deit_tiny_golden.safetensors', import.meta.url).pathname);
    for (const [name, shape] of vit.parameterShapes(c)) expect(weights.shapes.get(name), name).toEqual(shape);
    const B = 2;
    const T = 197;
    const H = c.heads;
    const r = vitForwardRef(c, weights.data, golden.data.get('input')!, B);

    const logitsErr = relL2(r.logits, golden.data.get('logits')!);
    const featuresErr = relL2(r.features, golden.data.get('features')!);
    // Golden attention is (B, stored layers, H, T, T); ours is per layer (B, H, T, T).
    const layers = Array.from(golden.data.get('attention_layers')!);
    const att = golden.data.get('attention')!;
    expect(att.length).toBe(B * layers.length * H * T * T);
    let attErr = 0;
    layers.forEach((l, i) => {
      const probs = r.probs[l]!;
      for (let b = 0; b < B; b++) {
        const ours = probs.subarray(b * H * T * T, (b + 1) * H * T * T);
        const theirs = att.subarray((b * layers.length + i) * H * T * T, (b * layers.length + i + 1) * H * T * T);
        attErr = Math.max(attErr, maxAbsDiff(ours, theirs));
      }
    });
    console.log(`DeiT-tiny golden (F16 weights): logits rel L2 ${logitsErr.toExponential(2)}, features rel L2 ${featuresErr.toExponential(2)}, attention (layers ${layers.join(', ')}) max abs ${attErr.toExponential(2)}`);
    expect(logitsErr).toBeLessThan(F16_WEIGHTS_TOL.logitsRelL2);
    expect(featuresErr).toBeLessThan(F16_WEIGHTS_TOL.featuresRelL2);
    expect(attErr).toBeLessThan(F16_WEIGHTS_TOL.attentionAbs);
    expect(r.normed.length).toBe(B * T * c.dim);
  }, 120_000);
});

describe('golden: timm\'s ViT options against timm float64', () => {
  // The reference's LayerScale, no_embed_class and registers, forward and backward, against timm's
  // own forward and autograd (the same fixtures the GPU is checked on).
  const fixture = (p: string) => new URL(`./fixtures/${p}`, import.meta.url).pathname;
  test.each([
    ['DeiT-III (deit3_micro)', 'deit3/deit3_micro', 'deit_tiny_golden.safetensors'],
    ['DINOv2 with registers (vit_reg_micro)', 'vitreg/vit_reg_micro', 'vitreg/vit_reg_micro_input.safetensors'],
  ])('%s: logits, features, loss and every gradient', (name, base, inputFile) => {
    const weights = readSafetensors(fixture(`${base}.safetensors`));
    const golden = readSafetensors(fixture(`${base}_golden.safetensors`));
    const input = readSafetensors(fixture(inputFile)).data.get('input')!;
    const shapes = new Map([...weights.shapes].map(([n, shape]) => [n, { shape }]));
    const c = parseConfig(JSON.parse(readFileSync(fixture(`${base}.json`), 'utf8')), shapes);
    const r = vitForwardRef(c, weights.data, input, 2);
    const logitsErr = relL2(r.logits, golden.data.get('logits')!);
    const featuresErr = relL2(r.features, golden.data.get('features')!);
    const labels = Array.from(golden.data.get('labels')!);
    const { loss, grads } = vitLossAndGradsRef(c, weights.data, input, 2, { labels, smoothing: 0 });
    let worst = { name: '', err: 0 };
    for (const [n, g] of grads) {
      const err = relL2(g, golden.data.get(`grad.${n}`)!);
      if (!(err <= worst.err)) worst = { name: n, err };
    }
    const lossErr = Math.abs(loss - golden.data.get('loss')![0]!) / golden.data.get('loss')![0]!;
    console.log(`${name}: logits rel L2 ${logitsErr.toExponential(2)}, features ${featuresErr.toExponential(2)}, loss ${lossErr.toExponential(2)}, worst of ${grads.size} gradients ${worst.err.toExponential(2)} (${worst.name})`);
    expect(grads.size).toBe([...golden.shapes.keys()].filter((n) => n.startsWith('grad.')).length);
    // The golden values are float64 rounded to f32 (relative 6e-8); the weights are f32 as timm ran them.
    expect(logitsErr).toBeLessThan(1e-6);
    expect(featuresErr).toBeLessThan(1e-6);
    expect(lossErr).toBeLessThan(1e-6);
    expect(worst.err, worst.name).toBeLessThan(1e-6);
  }, 300_000);
});

describe('golden: DeiT-III at a non-square 160x256 input against timm float64 (dynamic_img_size)', () => {
  // timm resamples the position embedding from 14x14 to 10x16 with antialiased bicubic
  // (resample_abs_pos_embed, F.interpolate antialias=True): rows shrink, columns grow.
  const fixture = (p: string) => new URL(`./fixtures/deit3/${p}`, import.meta.url).pathname;
  test('logits and features with the antialiased resampling; the plain bicubic one is measurably off', () => {
    const weights = readSafetensors(fixture('deit3_micro.safetensors'));
    const golden = readSafetensors(fixture('deit3_micro_160x256_golden.safetensors'));
    const input = readSafetensors(fixture('deit3_micro_160x256_input.safetensors')).data.get('input')!;
    const shapes = new Map([...weights.shapes].map(([n, shape]) => [n, { shape }]));
    const json = JSON.parse(readFileSync(fixture('deit3_micro_160x256.json'), 'utf8')) as { model_args: { dynamic_img_size: boolean } };
    expect(json.model_args.dynamic_img_size).toBe(true);
    const c = parseConfig(JSON.parse(readFileSync(fixture('deit3_micro.json'), 'utf8')), shapes);
    const aa = vitForwardRef(c, weights.data, input, 2, [160, 256]);
    const plain = vitForwardRef(c, weights.data, input, 2, [160, 256], { antialias: false });
    const err = relL2(aa.logits, golden.data.get('logits')!);
    const featuresErr = relL2(aa.features, golden.data.get('features')!);
    const plainErr = relL2(plain.logits, golden.data.get('logits')!);
    console.log(`DeiT-III 160x256: logits rel L2 ${err.toExponential(2)} (antialiased), ${plainErr.toExponential(2)} (plain bicubic); features ${featuresErr.toExponential(2)}`);
    expect(err).toBeLessThan(1e-6);
    expect(featuresErr).toBeLessThan(1e-6);
    expect(plainErr).toBeGreaterThan(1e-4);
  }, 120_000);
});

// ---- tiny models ----

const TINY: ViTConfig = {
  imageSize: 8, patchSize: 4, inChannels: 2, dim: 8, depth: 2, heads: 2, mlpDim: 12, numClasses: 3, eps: 1e-6,
  tokens: 'cls', globalPool: 'token', norm: 'pre', qkvBias: true, mean: [0.5, 0.5], std: [0.25, 0.25], cropPct: 1,
};

/** Seeded random parameters: std 0.3, LayerNorm weights around 1. */
function randomParams(c: ViTConfig, seed: number): Map<string, Float64Array> {
  return new Map(vit.parameterShapes(c).map(([name, shape], i) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const isNormWeight = /norm\w*\.weight$/.test(name);
    return [name, f64(randn(n, seed * 1000 + i, isNormWeight ? 0.2 : 0.3, isNormWeight ? 1 : 0))];
  }));
}

/** The training loss computed from the forward pass alone (independently of the backward code). */
function lossFromForward(c: ViTConfig, params: Map<string, Float64Array>, input: Float64Array, B: number, target: CETarget): number {
  const r = vitForwardRef(c, params, input, B);
  const mean = (v: Float64Array): number => v.reduce((s, x) => s + x, 0) / v.length;
  const ce = (logits: Float64Array): number => mean(crossEntropyRef(logits, B, c.numClasses, target).loss);
  return c.tokens === 'cls+dist' ? 0.5 * (ce(r.logitsCls!) + ce(r.logitsDist!)) : ce(r.logits);
}

const FD_EPS = 1e-5;
const FD_TOL = 1e-6;

const variants: [string, Partial<ViTConfig>, 'hard' | 'soft'][] = [
  ['pre-norm, cls token', {}, 'hard'],
  ['pre-norm, cls token, soft targets', {}, 'soft'],
  ['distilled (cls+dist)', { tokens: 'cls+dist' }, 'hard'],
  ['avg pooling with fc_norm', { globalPool: 'avg' }, 'hard'],
  ['post-norm, token', { norm: 'post' }, 'hard'],
  ['post-norm, avg', { norm: 'post', globalPool: 'avg' }, 'hard'],
  ['no qkv bias', { qkvBias: false }, 'hard'],
  ['no prefix tokens, avg pooling', { tokens: 'none', globalPool: 'avg' }, 'soft'],
  ['distilled, post-norm, no qkv bias', { tokens: 'cls+dist', norm: 'post', qkvBias: false }, 'soft'],
  ['LayerScale, no_embed_class (DeiT-III)', { layerScale: 0.5, noEmbedClass: true }, 'hard'],
  ['2 registers, LayerScale, no_embed_class (DINOv2 with registers)', { regTokens: 2, layerScale: 0.5, noEmbedClass: true }, 'hard'],
  ['2 registers inside the position embedding', { regTokens: 2 }, 'soft'],
  ['registers, avg pooling with fc_norm (registers not pooled)', { regTokens: 2, globalPool: 'avg', noEmbedClass: true }, 'hard'],
  ['avg pooling, no fc_norm, no final norm (the CIFAR showcase)', { tokens: 'none', globalPool: 'avg', fcNorm: false, finalNorm: false }, 'hard'],
  ['avg pooling after a norm over the tokens (fc_norm false)', { globalPool: 'avg', fcNorm: false }, 'hard'],
  ['token pooling without a final norm', { finalNorm: false, layerScale: 0.5 }, 'hard'],
  ['post-norm with LayerScale and a register', { norm: 'post', layerScale: 0.5, regTokens: 1 }, 'soft'],
];

describe('backward against finite differences', () => {
  test.each(variants)('%s', (_, overrides, kind) => {
    const c: ViTConfig = { ...TINY, ...overrides };
    const B = 2;
    const params = randomParams(c, 7);
    const input = f64(randn(B * c.inChannels * c.imageSize * c.imageSize, 11));
    let target: CETarget;
    if (kind === 'hard') target = { labels: [2, 0], smoothing: 0.1 };
    else {
      const raw = Array.from(randn(B * c.numClasses, 13), Math.exp);
      const soft = raw.map((v, i) => {
        const row = Math.floor(i / c.numClasses) * c.numClasses;
        return v / raw.slice(row, row + c.numClasses).reduce((s, x) => s + x, 0);
      });
      target = { soft };
    }

    const { loss, grads } = vitLossAndGradsRef(c, params, input, B, target);
    const loss0 = lossFromForward(c, params, input, B, target);
    expect(Math.abs(loss - loss0)).toBeLessThan(1e-14 * Math.max(1, Math.abs(loss0)));
    expect([...grads.keys()]).toEqual(vit.parameterShapes(c).map(([name]) => name));

    let worst = 0;
    for (const [name, x] of params) {
      const g = grads.get(name)!;
      expect(g.length, name).toBe(x.length);
      let maxDiff = 0;
      let maxFd = 0;
      for (let i = 0; i < x.length; i++) {
        const x0 = x[i]!;
        x[i] = x0 + FD_EPS;
        const up = lossFromForward(c, params, input, B, target);
        x[i] = x0 - FD_EPS;
        const down = lossFromForward(c, params, input, B, target);
        x[i] = x0;
        const fd = (up - down) / (2 * FD_EPS);
        maxDiff = Math.max(maxDiff, Math.abs(g[i]! - fd));
        maxFd = Math.max(maxFd, Math.abs(fd));
      }
      expect(maxFd, `${name}: gradient is all zero`).toBeGreaterThan(0);
      const rel = maxDiff / maxFd;
      worst = Math.max(worst, rel);
      expect(rel, name).toBeLessThan(FD_TOL);
    }
    console.log(`${_}: loss ${loss.toFixed(6)}, worst per-tensor relative gradient error ${worst.toExponential(2)}`);
  });
});

describe('other image sizes', () => {
  test('a model trained at 8 px runs at 12 px with a resized position embedding', () => {
    for (const tokens of ['cls', 'cls+dist', 'none'] as const) {
      const c: ViTConfig = { ...TINY, tokens, globalPool: tokens === 'none' ? 'avg' : 'token' };
      const params = randomParams(c, 3);
      const B = 2;
      const S = 12;
      const input = f64(randn(B * c.inChannels * S * S, 5));
      const r = vitForwardRef(c, params, input, B, S);
      const T = (tokens === 'cls+dist' ? 2 : tokens === 'cls' ? 1 : 0) + 9;
      expect(r.logits.length).toBe(B * c.numClasses);
      expect(r.logits.every(Number.isFinite), tokens).toBe(true);
      expect(r.probs[0]!.length).toBe(B * c.heads * T * T);
      expect(r.normed.length).toBe(B * T * c.dim);
      // Same size as training: identical to the default path.
      const same = vitForwardRef(c, params, input.subarray(0, B * c.inChannels * 64), B, 8);
      expect(same.logits).toEqual(vitForwardRef(c, params, input.subarray(0, B * c.inChannels * 64), B).logits);
    }
    expect(() => vitForwardRef(TINY, randomParams(TINY, 3), new Float64Array(2 * 2 * 100), 2, 10)).toThrow(/multiple/);
  });

  test('the antialiased resampling keeps a constant field constant, is the identity at the same size, and keeps prefix rows', () => {
    const D = 3;
    const constant = new Float32Array((1 + 14 * 14) * D).map((_, i) => (i < D ? 9 : 0.25 * ((i % D) + 1)));
    const out = resizePosEmbed(constant, 1, D, [14, 14], [10, 16], { antialias: true });
    expect(out.length).toBe((1 + 160) * D);
    expect(Array.from(out.subarray(0, D))).toEqual([9, 9, 9]);
    for (let i = D; i < out.length; i++) expect(out[i]).toBeCloseTo(0.25 * ((i % D) + 1), 6);
    const random = Float32Array.from(randn(4 * 4 * D, 8));
    expect(resizePosEmbed(random, 0, D, [4, 4], [4, 4], { antialias: true })).toEqual(random);
  });

  test('with no_embed_class and registers only the patch rows are resized; prefix tokens take no position', () => {
    const c: ViTConfig = { ...TINY, regTokens: 2, noEmbedClass: true, layerScale: 0.5 };
    const params = randomParams(c, 4);
    expect(params.get('pos_embed')!.length).toBe(4 * c.dim);
    const B = 2;
    const input = f64(randn(B * c.inChannels * 12 * 12, 6));
    const r = vitForwardRef(c, params, input, B, 12);
    expect(r.probs[0]!.length).toBe(B * c.heads * 12 ** 2);
    expect(r.logits.every(Number.isFinite)).toBe(true);
    // The same model with the prefix rows in the position embedding, those rows zero: no_embed_class
    // is exactly "the prefix tokens' positions are zero".
    const zero = new Map(params);
    zero.set('pos_embed', new Float64Array(4 * c.dim));
    const shifted = new Map(zero);
    const withPrefixRow: ViTConfig = { ...c, noEmbedClass: false };
    const padded = new Float64Array((3 + 4) * c.dim);
    shifted.set('pos_embed', padded);
    const small = input.subarray(0, B * c.inChannels * 64);
    expect(vitForwardRef(withPrefixRow, shifted, small, B).logits).toEqual(vitForwardRef(c, zero, small, B).logits);
  });
});
