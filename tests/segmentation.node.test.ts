// The dense head's float64 reference checked on its own: bilinear upsampling against values
// PyTorch's F.interpolate(mode='bilinear', align_corners=False) gives, every backward against
// central finite differences on seeded inputs, and the reordering the engine relies on (the first
// Linear before the upsampling) against the seed's order. Also the masks and metrics of
// src/training/segmentation.ts.
import { describe, expect, test } from 'vitest';
import { binaryMasks, checkMask, maskFromPixels, segmentationMetrics } from '../src/training/segmentation';
import { numericGrad } from './helpers/finiteDifferences';
import { f64, randn, uniform } from './helpers/random';
import { pixelLossRef, segHeadRef, upsampleBilinearBackwardRef, upsampleBilinearRef, type GridShape } from './reference/segmentation';

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((s, v, i) => s + v * b[i]!, 0);

function expectGrad(what: string, analytic: ArrayLike<number>, x: Float64Array, loss: () => number, samples = x.length): void {
  const at = Array.from({ length: Math.min(samples, x.length) }, (_, k) => Math.floor((k * x.length) / Math.min(samples, x.length)));
  const numeric = numericGrad(x, loss, at);
  at.forEach((i, k) => {
    const err = Math.abs(analytic[i]! - numeric[k]!);
    if (err > 1e-6 + 1e-5 * Math.abs(numeric[k]!)) throw new Error(`${what}[${i}]: analytic ${analytic[i]}, numeric ${numeric[k]}`);
  });
}

describe('bilinear upsampling (float64 reference)', () => {
  test('2x2 to 4x4 gives what PyTorch gives (align_corners=False)', () => {
    const out = upsampleBilinearRef([1, 2, 3, 4], { B: 1, prefix: 0, h: 2, w: 2, Ho: 4, Wo: 4, C: 1 });
    expect(Array.from(out)).toEqual([1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4]);
  });
  test('a ratio that is not whole: 3 to 5 columns, clamped at both edges; prefix tokens skipped', () => {
    const out = upsampleBilinearRef([99, 0, 1, 2], { B: 1, prefix: 1, h: 1, w: 3, Ho: 1, Wo: 5, C: 1 });
    Array.from(out).forEach((v, i) => expect(v).toBeCloseTo([0, 0.4, 1, 1.6, 2][i]!, 12));
  });
  test('backward against finite differences, upsampling and downsampling, non-square, with prefix tokens', () => {
    for (const s of [
      { B: 2, prefix: 1, h: 3, w: 2, Ho: 7, Wo: 5, C: 3 },
      { B: 1, prefix: 0, h: 5, w: 4, Ho: 3, Wo: 2, C: 2 },
    ] satisfies GridShape[]) {
      const x = f64(randn(s.B * (s.prefix + s.h * s.w) * s.C, 1));
      const proj = randn(s.B * s.Ho * s.Wo * s.C, 2);
      const dx = upsampleBilinearBackwardRef(proj, s);
      expectGrad('upsample dx', dx, x, () => dot(upsampleBilinearRef(x, s), proj));
      for (let b = 0; b < s.B; b++) for (let t = 0; t < s.prefix * s.C; t++) expect(dx[b * (s.prefix + s.h * s.w) * s.C + t]).toBe(0);
    }
  });
});

describe('per-pixel loss (float64 reference)', () => {
  test('sigmoid BCE and softmax CE: gradients against finite differences, out-of-range targets give NaN', () => {
    const N = 7;
    const z1 = f64(randn(N, 3, 3));
    const t1 = uniform(N, 4);
    expectGrad('bce', pixelLossRef(z1, t1, N, 1, 1).dlogits, z1, () => dot(pixelLossRef(z1, t1, N, 1).loss, Array(N).fill(1)));
    expect(pixelLossRef([0.3], [1.5], 1, 1).loss[0]).toBeNaN();
    expect(pixelLossRef([0], [1], 1, 1).loss[0]).toBeCloseTo(Math.log(2), 12);
    const K = 4;
    const z = f64(randn(N * K, 6, 2));
    const labels = Array.from({ length: N }, (_, i) => i % K);
    expectGrad('ce', pixelLossRef(z, labels, N, K, 1).dlogits, z, () => pixelLossRef(z, labels, N, K).loss.reduce((a, b) => a + b, 0));
    expect(pixelLossRef([0, 0], [2], 1, 2).loss[0]).toBeNaN();
    expect(pixelLossRef([0, 0], [0.5], 1, 2).loss[0]).toBeNaN();
  });
});

describe('the dense head (float64 reference)', () => {
  const s = { B: 2, prefix: 2, h: 2, w: 3, Ho: 5, Wo: 7 };
  for (const widths of [[4, 6, 5, 1], [4, 3, 3], [4, 1]]) {
    test(`widths ${widths.join('-')}: every gradient against finite differences`, () => {
      const K = widths.at(-1)!;
      const N = s.B * s.Ho * s.Wo;
      const tokens = f64(randn(s.B * (s.prefix + s.h * s.w) * widths[0]!, 10));
      const weights = widths.slice(1).map((o, i) => f64(randn(o * widths[i]!, 20 + i, 1 / Math.sqrt(widths[i]!))));
      const biases = widths.slice(1).map((o, i) => f64(randn(o, 30 + i, 0.1)));
      const targets = K === 1 ? uniform(N, 40).map((v) => (v > 0.5 ? 1 : 0)) : Float32Array.from({ length: N }, (_, i) => (i * 7) % K);
      const run = () => segHeadRef(tokens, s, widths, { weights, biases }, targets);
      const r = run();
      expectGrad('dtokens', r.dtokens, tokens, () => run().loss, 60);
      weights.forEach((w, i) => expectGrad(`dW${i}`, r.dW[i]!, w, () => run().loss, 40));
      biases.forEach((b, i) => expectGrad(`db${i}`, r.db[i]!, b, () => run().loss));
    });
  }
  test('the first Linear commutes with the upsampling (the engine applies it to the tokens)', () => {
    const D = 5;
    const H = 3;
    const grid = { B: 1, prefix: 1, h: 3, w: 2, Ho: 6, Wo: 5 };
    const T = grid.prefix + grid.h * grid.w;
    const tokens = randn(T * D, 50);
    const W = randn(H * D, 51);
    const bias = randn(H, 52);
    const lin = (x: ArrayLike<number>, rows: number) => Float64Array.from({ length: rows * H }, (_, i) => {
      const r = Math.floor(i / H);
      const o = i % H;
      return bias[o]! + Array.from({ length: D }, (_, k) => x[r * D + k]! * W[o * D + k]!).reduce((a, b) => a + b, 0);
    });
    const seedOrder = lin(upsampleBilinearRef(tokens, { ...grid, C: D }), grid.Ho * grid.Wo);
    const moved = upsampleBilinearRef(lin(tokens, T), { ...grid, C: H });
    moved.forEach((v, i) => expect(v).toBeCloseTo(seedOrder[i]!, 12));
  });
});

describe('masks and metrics', () => {
  test('a mask from a grey image: garment where the pixel is above the threshold', () => {
    expect(Array.from(maskFromPixels(Uint8Array.from([0, 25, 26, 255]), 25))).toEqual([0, 0, 1, 1]);
  });
  test('binary masks from RGBA images: any channel above half', () => {
    const rgba = Uint8Array.from([0, 0, 0, 255, 200, 200, 200, 255]);
    expect(Array.from(binaryMasks({ width: 2, height: 1, data: rgba, channels: 4 }))).toEqual([0, 1]);
  });
  test('IoU and Dice of a binary prediction, and the mean over K classes', () => {
    // Predictions from logits: 2 pixels right foreground, 1 false positive, 1 missed.
    const m = segmentationMetrics(Float32Array.from([3, 2, 1, -1, -2]), Float32Array.from([1, 1, 0, 1, 0]), 1);
    expect(m.iou).toBeCloseTo(2 / 4, 12);
    expect(m.dice).toBeCloseTo(4 / 6, 12);
    expect(m.pixelAccuracy).toBeCloseTo(3 / 5, 12);
    // Three classes: class 0 right twice, class 1 once with a miss, class 2 absent from both: left out.
    const logits = Float32Array.from([5, 0, 0, 5, 0, 0, 0, 5, 0, 0, 5, 0]);
    const k = segmentationMetrics(logits, Float32Array.from([0, 0, 1, 0]), 3);
    expect(k.iou).toBeCloseTo((2 / 3 + 1 / 2) / 2, 12);
  });
  test('masks with values outside 0..K-1 or of the wrong size are refused, naming the file', () => {
    expect(() => checkMask(Float32Array.from([0, 1, 2]), 2, 3, 'a.png')).toThrow(/a\.png: pixel 2 has class 2, outside 0\.\.1/);
    expect(() => checkMask(Float32Array.from([0, 1]), 2, 3, 'a.png')).toThrow(/a\.png: 2 pixels, the image has 3/);
  });
});
