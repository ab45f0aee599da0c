// The float64 references checked on their own: every backward against central finite differences
// of a random projection L = sum(out * w), and every forward against facts that do not depend on
// the reference code (known values, normalization, a separately computed product).
import { describe, expect, test } from 'vitest';
import { FD_EPS, numericGrad } from './helpers/finiteDifferences';
import { f64, randn, uniform } from './helpers/random';
import {
  adamwRef, attentionBackwardRef, attentionRef, crossEntropyRef, embedTokensBackwardRef, embedTokensRef, erf, erfc,
  geluBackwardRef, geluRef, layerNormBackwardRef, layerNormRef, matmulBackwardRef, matmulRef, meanPoolBackwardRef,
  meanPoolRef, patchEmbedBackwardRef, patchEmbedRef, patchifyRef, sumSquaresRef, type AttentionShape,
} from './reference/ops';
import {
  attentionScoresGradRef, attnMaskRef, imgMaskRef, map4, paddedSize, patchMergeBackwardRef, patchMergeRef,
  relativePositionBiasBackwardRef, relativePositionBiasRef, relativePositionIndexRef, roll, swinUnwindowsBackwardRef,
  swinUnwindowsRef, swinWindowsBackwardRef, swinWindowsRef, windowAttentionBackwardRef, windowAttentionRef, type SwinLayout,
} from './reference/swin';

const TOL = 1e-6;

const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

/** Analytic gradient against finite differences: max |a - fd| relative to max |fd|. */
function expectGrad(what: string, analytic: ArrayLike<number>, x: Float64Array, loss: () => number): void {
  const fd = numericGrad(x, loss);
  expect(analytic.length, what).toBe(fd.length);
  let maxErr = 0;
  let scale = 0;
  for (let i = 0; i < fd.length; i++) {
    maxErr = Math.max(maxErr, Math.abs(analytic[i]! - fd[i]!));
    scale = Math.max(scale, Math.abs(fd[i]!));
  }
  expect(scale, `${what}: gradient is all zero`).toBeGreaterThan(0);
  expect(maxErr / scale, what).toBeLessThan(TOL);
}

describe('matmul backward', () => {
  test.each([
    [false, false, undefined, undefined], [true, false, undefined, undefined],
    [false, true, undefined, undefined], [true, true, undefined, undefined],
    [false, false, undefined, 1], [false, true, 1, undefined],
  ])('transA=%s transB=%s batchA=%s batchB=%s', (transA, transB, batchA, batchB) => {
    const s = { batch: 2, M: 3, N: 4, K: 5, transA, transB, batchA, batchB };
    const a = f64(randn((batchA ?? 2) * 3 * 5, 1));
    const b = f64(randn((batchB ?? 2) * 5 * 4, 2));
    const w = f64(randn(2 * 3 * 4, 3));
    const loss = (): number => dot(matmulRef(a, b, s), w);
    const { da, db } = matmulBackwardRef(a, b, w, s);
    expectGrad('da', da, a, loss);
    expectGrad('db', db, b, loss);
  });
});

describe('gelu', () => {
  const xs = Float64Array.from({ length: 97 }, (_, i) => -6 + i / 8);

  test('backward against finite differences, per element over -6..6 and on random inputs', () => {
    // GELU is element-wise, so each element's derivative is checked relative to itself (tails included).
    const dy = new Float64Array(xs.length).fill(1);
    const analytic = geluBackwardRef(xs, dy);
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i]!;
      const fd = (geluRef([x + FD_EPS])[0]! - geluRef([x - FD_EPS])[0]!) / (2 * FD_EPS);
      expect(Math.abs(analytic[i]! - fd), `x=${x}`).toBeLessThan(TOL * Math.abs(fd) + 1e-12);
    }
    const x = f64(randn(20, 4, 3));
    const w = f64(randn(20, 5));
    expectGrad('dx', geluBackwardRef(x, w), x, () => dot(geluRef(x), w));
  });

  test('known values', () => {
    const known: [number, number][] = [
      [1, 0.84134474606854294859], [-1, -0.15865525393145705141], [0.5, 0.34573123063700655182],
      [-2, -0.045500263896358414401], [3, 2.9959503059051097164], [-3.5, -0.00081420177662433762722],
      [-5, -1.4332578593959695584e-6], [-6, -5.9195258702261888442e-9], [0, 0],
    ];
    const y = geluRef(known.map(([x]) => x));
    known.forEach(([x, v], i) => expect(Math.abs(y[i]! - v), `gelu(${x})`).toBeLessThanOrEqual(1e-14 * Math.abs(v)));
  });

  test('erf and erfc against known values, about 1e-15 relative', () => {
    const known: [number, number, number][] = [
      [0.001, 0.0011283787909692364034, 0.9988716212090307636], [0.5, 0.52049987781304653768, 0.47950012218695346232],
      [1, 0.84270079294971486934, 0.15729920705028513066], [2, 0.99532226501895273416, 0.0046777349810472658379],
      [3, 0.99997790950300141456, 0.000022090496998585441373], [5, 0.99999999999846254021, 1.5374597944280348502e-12],
    ];
    for (const [x, e, ec] of known) {
      expect(Math.abs(erf(x) - e), `erf(${x})`).toBeLessThanOrEqual(2e-15 * e);
      expect(Math.abs(erf(-x) + e), `erf(${-x})`).toBeLessThanOrEqual(2e-15 * e);
      expect(Math.abs(erfc(x) - ec), `erfc(${x})`).toBeLessThanOrEqual(1e-14 * ec);
      expect(Math.abs(erfc(-x) - (2 - ec)), `erfc(${-x})`).toBeLessThanOrEqual(1e-15);
    }
  });
});

describe('layer norm', () => {
  const rows = 3;
  const D = 7;
  const eps = 1e-5;

  test('backward: dx, dgamma, dbeta', () => {
    const x = f64(randn(rows * D, 6, 2, 0.5));
    const gamma = f64(randn(D, 7, 1, 1));
    const beta = f64(randn(D, 8));
    const w = f64(randn(rows * D, 9));
    const loss = (): number => dot(layerNormRef(x, gamma, beta, rows, D, eps).y, w);
    const g = layerNormBackwardRef(x, gamma, w, rows, D, eps);
    expectGrad('dx', g.dx, x, loss);
    expectGrad('dgamma', g.dgamma, gamma, loss);
    expectGrad('dbeta', g.dbeta, beta, loss);
  });

  test('forward: rows have mean 0 and variance 1 before gamma and beta', () => {
    const x = randn(rows * D, 10, 3, 2);
    const { y, mean, rstd } = layerNormRef(x, new Float64Array(D).fill(1), new Float64Array(D), rows, D, 0);
    for (let r = 0; r < rows; r++) {
      const row = y.subarray(r * D, r * D + D);
      const mu = row.reduce((a, b) => a + b, 0) / D;
      expect(Math.abs(mu)).toBeLessThan(1e-14);
      expect(Math.abs(row.reduce((a, b) => a + (b - mu) ** 2, 0) / D - 1)).toBeLessThan(1e-14);
      expect(mean[r]! + row[0]! / rstd[r]!).toBeCloseTo(x[r * D]!, 12);
    }
  });
});

describe('attention', () => {
  const B = 2;
  const T = 5;
  const H = 2;
  const hd = 3;
  const D = H * hd;
  const cases: [string, AttentionShape][] = [
    ['no bias', { B, T, H, hd, scale: 1 / Math.sqrt(hd) }],
    ['bias per head, shared over batch', { B, T, H, hd, scale: 1 / Math.sqrt(hd), bias: { data: randn(H * T * T, 11), nb: 1, nh: H } }],
    ['bias per batch, shared over heads', { B, T, H, hd, scale: 0.7, bias: { data: randn(B * T * T, 12), nb: B, nh: 1 } }],
  ];

  test.each(cases)('backward: dqkv, %s', (_, s) => {
    const qkv = f64(randn(B * T * 3 * D, 13));
    const w = f64(randn(B * T * D, 14));
    expectGrad('dqkv', attentionBackwardRef(qkv, w, s), qkv, () => dot(attentionRef(qkv, s).out, w));
  });

  test.each(cases)('forward: probs rows sum to 1, lse matches, out = probs V, %s', (_, s) => {
    const qkv = randn(B * T * 3 * D, 15);
    const { out, probs, lse } = attentionRef(qkv, s);
    // V as (B*H, T, hd), read straight from the packed (B, T, 3, H, hd) layout.
    const v = new Float64Array(B * H * T * hd);
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) for (let d = 0; d < hd; d++) {
      v[((b * H + h) * T + t) * hd + d] = qkv[b * T * 3 * D + t * 3 * D + 2 * D + h * hd + d]!;
    }
    const pv = matmulRef(probs, v, { batch: B * H, M: T, N: hd, K: T });
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let i = 0; i < T; i++) {
      const row = probs.subarray(((b * H + h) * T + i) * T, ((b * H + h) * T + i + 1) * T);
      expect(Math.abs(row.reduce((a, c) => a + c, 0) - 1)).toBeLessThan(1e-14);
      // p_ij = exp(s_ij - lse_i) with s_ij computed here from q, k and the bias directly.
      for (let j = 0; j < T; j++) {
        let sij = 0;
        for (let d = 0; d < hd; d++) sij += qkv[b * T * 3 * D + i * 3 * D + h * hd + d]! * qkv[b * T * 3 * D + j * 3 * D + D + h * hd + d]!;
        sij *= s.scale;
        if (s.bias) sij += s.bias.data[((b % s.bias.nb) * s.bias.nh + (h % s.bias.nh)) * T * T + i * T + j]!;
        expect(Math.abs(Math.exp(sij - lse[(b * H + h) * T + i]!) - row[j]!)).toBeLessThan(1e-14);
      }
      for (let d = 0; d < hd; d++) {
        expect(Math.abs(out[(b * T + i) * D + h * hd + d]! - pv[((b * H + h) * T + i) * hd + d]!)).toBeLessThan(1e-14);
      }
    }
  });
});

describe('cross entropy', () => {
  const N = 4;
  const C = 5;
  const meanLoss = (loss: Float64Array): number => loss.reduce((a, b) => a + b, 0) / N;

  test('backward, hard labels with smoothing', () => {
    const logits = f64(randn(N * C, 16, 2));
    const target = { labels: [0, 3, 4, 3], smoothing: 0.1 };
    expectGrad('dlogits', crossEntropyRef(logits, N, C, target).dlogits, logits, () => meanLoss(crossEntropyRef(logits, N, C, target).loss));
  });

  test('backward, soft targets', () => {
    const logits = f64(randn(N * C, 17, 2));
    const raw = uniform(N * C, 18);
    const soft = Float64Array.from(raw, (v, i) => v / raw.subarray(Math.floor(i / C) * C, Math.floor(i / C) * C + C).reduce((a, b) => a + b, 0));
    const target = { soft };
    expectGrad('dlogits', crossEntropyRef(logits, N, C, target).dlogits, logits, () => meanLoss(crossEntropyRef(logits, N, C, target).loss));
  });

  test('forward: known losses', () => {
    // Equal logits: every class has probability 1/C, so the loss is log C whatever the target.
    expect(crossEntropyRef([3, 3, 3, 3, 3], 1, C, { labels: [2], smoothing: 0.1 }).loss[0]).toBeCloseTo(Math.log(C), 14);
    // Logits [0, log 3]: p = [1/4, 3/4]; label 1 without smoothing gives -log(3/4).
    const r = crossEntropyRef([0, Math.log(3)], 1, 2, { labels: [1], smoothing: 0 });
    expect(r.loss[0]).toBeCloseTo(-Math.log(0.75), 14);
    expect(r.dlogits[0]).toBeCloseTo(0.25, 14);
    expect(r.dlogits[1]).toBeCloseTo(-0.25, 14);
    expect(crossEntropyRef([0, 0], 1, 2, { labels: [2], smoothing: 0 }).loss[0]).toBeNaN();
  });
});

describe('optimizer', () => {
  test('adamw: one scalar step by hand', () => {
    // g' = 0.5 * 2 = 1; p = 1 - 0.01*0.05*1 = 0.9995; m = 0.9*0.1 + 0.1*1 = 0.19; v = 0.999*0.01 + 0.001*1 = 0.01099;
    // mhat = 0.19 / (1 - 0.9^2) = 1; vhat = 0.01099 / (1 - 0.999^2) = 5.4977488744372186; p -= 0.01 * 1 / (sqrt(vhat) + 1e-8).
    const c = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05, step: 2, gradScale: 2 };
    const r = adamwRef([1], [0.5], [0.1], [0.01], c);
    expect(r.m[0]).toBeCloseTo(0.19, 15);
    expect(r.v[0]).toBeCloseTo(0.01099, 15);
    expect(r.p[0]).toBeCloseTo(0.99523511280205645757, 15);
  });

  test('sum of squares', () => {
    expect(sumSquaresRef([1, -2, 3, 0.5])).toBe(14.25);
  });
});

describe('tokens', () => {
  test('embed tokens: forward layout and backward', () => {
    const [B, P, nTok, D] = [2, 4, 2, 3];
    const T = nTok + P;
    const patches = f64(randn(B * P * D, 19));
    const tokens = f64(randn(nTok * D, 20));
    const pos = f64(randn(T * D, 21));
    const out = embedTokensRef(patches, tokens, pos, B, P, nTok, D);
    expect(out[(1 * T + 1) * D + 2]).toBe(tokens[1 * D + 2]! + pos[1 * D + 2]!);
    expect(out[(1 * T + nTok + 3) * D + 0]).toBe(patches[(1 * P + 3) * D]! + pos[(nTok + 3) * D]!);
    const w = f64(randn(B * T * D, 22));
    const loss = (): number => dot(embedTokensRef(patches, tokens, pos, B, P, nTok, D), w);
    const g = embedTokensBackwardRef(w, B, P, nTok, D);
    expectGrad('dpatches', g.dpatches, patches, loss);
    expectGrad('dtokens', g.dtokens, tokens, loss);
    expectGrad('dpos', g.dpos, pos, loss);
  });

  test.each([0, 1, 4])('mean pool from token %i: forward and backward', (start) => {
    const [B, T, D] = [2, 5, 3];
    const x = f64(randn(B * T * D, 23));
    const pooled = meanPoolRef(x, B, T, D, start);
    let expected = 0;
    for (let t = start; t < T; t++) expected += x[(1 * T + t) * D + 2]!;
    expect(pooled[1 * D + 2]).toBeCloseTo(expected / (T - start), 14);
    const w = f64(randn(B * D, 24));
    const dx = meanPoolBackwardRef(w, B, T, D, start);
    expectGrad('dx', dx, x, () => dot(meanPoolRef(x, B, T, D, start), w));
    for (let t = 0; t < start; t++) expect(dx[t * D]).toBe(0);
  });
});

describe('patch embedding', () => {
  const [B, C, H, W, P, D] = [2, 3, 8, 8, 4, 5];
  const nP = (H / P) * (W / P);

  test('forward equals a direct convolution, and patchify columns match the weight flattening', () => {
    const img = randn(B * C * H * W, 25);
    const w = randn(D * C * P * P, 26);
    const bias = randn(D, 27);
    const out = patchEmbedRef(img, w, bias, B, C, H, W, P, D);
    for (let b = 0; b < B; b++) for (let n = 0; n < nP; n++) for (let o = 0; o < D; o++) {
      const [py, px] = [Math.floor(n / (W / P)), n % (W / P)];
      let sum = bias[o]!;
      for (let c = 0; c < C; c++) for (let ky = 0; ky < P; ky++) for (let kx = 0; kx < P; kx++) {
        sum += w[((o * C + c) * P + ky) * P + kx]! * img[((b * C + c) * H + py * P + ky) * W + px * P + kx]!;
      }
      expect(Math.abs(out[(b * nP + n) * D + o]! - sum)).toBeLessThan(1e-13);
    }
    const cols = patchifyRef(img, B, C, H, W, P);
    const viaMatmul = matmulRef(cols, w, { batch: 1, M: B * nP, N: D, K: C * P * P, transB: true });
    viaMatmul.forEach((v, i) => expect(Math.abs(v + bias[i % D]! - out[i]!)).toBeLessThan(1e-13));
  });

  test('backward: dw, dbias', () => {
    const img = f64(randn(B * C * H * W, 28));
    const w = f64(randn(D * C * P * P, 29));
    const bias = f64(randn(D, 30));
    const proj = f64(randn(B * nP * D, 31));
    const loss = (): number => dot(patchEmbedRef(img, w, bias, B, C, H, W, P, D), proj);
    const g = patchEmbedBackwardRef(img, proj, B, C, H, W, P, D);
    expectGrad('dw', g.dw, w, loss);
    expectGrad('dbias', g.dbias, bias, loss);
  });
});

describe('swin: shifted windows, relative position bias, patch merging', () => {
  // Layouts (map H x W, window wh x ww, shift sh, sw): shifted and padded, unshifted and padded,
  // a shift along one axis only (timm's clamp on a 5 x 10 map with window 7).
  const layouts: [string, SwinLayout][] = [
    ['8x8, window 4, shift 2', { H: 8, W: 8, wh: 4, ww: 4, sh: 2, sw: 2 }],
    ['5x4 padded to 6x6, window 3, shift 1', { H: 5, W: 4, wh: 3, ww: 3, sh: 1, sw: 1 }],
    ['5x7 padded to 6x8, window 2x4, no shift', { H: 5, W: 7, wh: 2, ww: 4, sh: 0, sw: 0 }],
    ['5x10, window 5x7, shift 0x3', { H: 5, W: 10, wh: 5, ww: 7, sh: 0, sw: 3 }],
  ];
  const windowsOf = (l: SwinLayout) => (paddedSize(l)[0] / l.wh) * (paddedSize(l)[1] / l.ww);

  test('roll moves elements forward by the shift, as torch.roll', () => {
    const rolled = roll(map4([0, 1, 2, 3, 4], 1, 1, 5, 1), 0, -2);
    expect([...rolled.data]).toEqual([2, 3, 4, 0, 1]);
  });

  test('windows by hand: a shifted 4x4 map, a padded 3x3 map, and that map shifted', () => {
    // x(y, x) = 10y + x. Rolled by -1, window 0 of a 4x4 map with window 2 holds x(1..2, 1..2).
    const grid = (H: number, W: number) => Array.from({ length: H * W }, (_, t) => 10 * Math.floor(t / W) + (t % W));
    expect([...swinWindowsRef(grid(4, 4), 1, 1, { H: 4, W: 4, wh: 2, ww: 2, sh: 1, sw: 1 }).slice(0, 4)]).toEqual([11, 12, 21, 22]);
    // The last window of that map wraps around: rolled rows 2, 3 are rows 3, 0 of x.
    expect([...swinWindowsRef(grid(4, 4), 1, 1, { H: 4, W: 4, wh: 2, ww: 2, sh: 1, sw: 1 }).slice(12, 16)]).toEqual([33, 30, 3, 0]);
    // A 3x3 map in windows of 2 pads to 4x4: window 1 (top right) is [x(0,2), pad, x(1,2), pad].
    expect([...swinWindowsRef(grid(3, 3), 1, 1, { H: 3, W: 3, wh: 2, ww: 2, sh: 0, sw: 0 }).slice(4, 8)]).toEqual([2, 0, 12, 0]);
    // Padded and shifted: timm 1.0 rolls the 3x3 map first (rolled column 2 is column 0 of x), then
    // pads; padding first would put the padding in rolled column 2 instead.
    expect([...swinWindowsRef(grid(3, 3), 1, 1, { H: 3, W: 3, wh: 2, ww: 2, sh: 1, sw: 1 }).slice(4, 8)]).toEqual([10, 0, 20, 0]);
  });

  test.each(layouts)('windows and their reverse: inverse of each other, backward against finite differences, %s', (_, l) => {
    const [B, C] = [2, 3];
    const nWN = B * windowsOf(l) * l.wh * l.ww * C;
    const x = f64(randn(B * l.H * l.W * C, 40));
    expect(swinUnwindowsRef(swinWindowsRef(x, B, C, l), B, C, l)).toEqual(x);
    const w = f64(randn(nWN, 41));
    expectGrad('dx', swinWindowsBackwardRef(w, B, C, l), x, () => dot(swinWindowsRef(x, B, C, l), w));
    const win = f64(randn(nWN, 42));
    const v = f64(randn(B * l.H * l.W * C, 43));
    expectGrad('dwindows', swinUnwindowsBackwardRef(v, B, C, l), win, () => dot(swinUnwindowsRef(win, B, C, l), v));
  });

  test('relative position index: corners and centre by hand', () => {
    const [wh, ww] = [3, 4];
    const N = wh * ww;
    const index = relativePositionIndexRef(wh, ww);
    // Same position: offset (0, 0) is the centre of the (2wh-1) x (2ww-1) table.
    expect(index[5 * N + 5]).toBe((wh - 1) * (2 * ww - 1) + ww - 1);
    // First token against the last: offset (-(wh-1), -(ww-1)) is entry 0; the reverse is the last.
    expect(index[N - 1]).toBe(0);
    expect(index[(N - 1) * N]).toBe((2 * wh - 1) * (2 * ww - 1) - 1);
    // Token (0, 1) against (2, 0): offset (-2, 1) -> (0, 4).
    expect(index[1 * N + 8]).toBe(4);
  });

  test('shift mask by hand: 8x8 map, window 4, shift 2', () => {
    const l = { H: 8, W: 8, wh: 4, ww: 4, sh: 2, sw: 2 };
    // Rows [0, 4), [4, 6), [6, 8) and the same for columns: 9 regions.
    const img = imgMaskRef(l);
    expect(new Set(img.data).size).toBe(9);
    expect([img.data[0], img.data[4], img.data[6], img.data[4 * 8], img.data[7 * 8 + 7]]).toEqual([0, 1, 2, 3, 8]);
    const mask = attnMaskRef(l)!;
    const N = 16;
    const m = (w: number, i: number, j: number) => mask[(w * N + i) * N + j];
    // Window 0 (top left) lies in region 0: nothing masked.
    for (let k = 0; k < N * N; k++) expect(mask[k]).toBe(0);
    // Window 1 (top right): columns 4, 5 (region 1) against 6, 7 (region 2).
    expect([m(1, 0, 1), m(1, 0, 2), m(1, 0, 3), m(1, 4, 13), m(1, 6, 15)]).toEqual([0, -100, -100, 0, 0]);
    // Window 2 (bottom left): rows 4, 5 against 6, 7.
    expect([m(2, 0, 3), m(2, 0, 7), m(2, 0, 8), m(2, 9, 15)]).toEqual([0, 0, -100, 0]);
    // Window 3 (bottom right): four regions of 2x2 tokens.
    expect([m(3, 0, 5), m(3, 0, 2), m(3, 0, 8), m(3, 0, 10), m(3, 15, 10), m(3, 3, 6)]).toEqual([0, -100, -100, -100, 0, 0]);
    let masked = 0;
    for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) masked += m(3, i, j) === -100 ? 1 : 0;
    expect(masked).toBe(N * N - 4 * 16);
    // A 6x6 map pads to 8x8: timm builds the mask on the padded map, so it is the same mask.
    expect(attnMaskRef({ ...l, H: 6, W: 6 })).toEqual(mask);
  });

  test('shift mask by hand: a shift along columns only (5x10 map, window 5x7, shift 0x3)', () => {
    // Rows: slice(-0, None) covers everything, so only columns split: [0, 7), [7, 11), [11, 14).
    const l = { H: 5, W: 10, wh: 5, ww: 7, sh: 0, sw: 3 };
    expect(new Set(imgMaskRef(l).data)).toEqual(new Set([6, 7, 8]));
    const mask = attnMaskRef(l)!;
    const N = 35;
    for (let k = 0; k < N * N; k++) expect(mask[k]).toBe(0);
    const m = (i: number, j: number) => mask[(N + i) * N + j];
    // Window 1: columns 7..10 of the padded map (px < 4) against 11..13.
    expect([m(0, 3), m(0, 4), m(7, 3), m(7, 11), m(34, 6)]).toEqual([0, -100, 0, -100, 0]);
    expect(attnMaskRef({ H: 8, W: 8, wh: 4, ww: 4, sh: 0, sw: 0 })).toBeUndefined();
  });

  test.each(layouts)('relative position bias: table lookup plus mask, backward against finite differences, %s', (_, l) => {
    const heads = 2;
    const N = l.wh * l.ww;
    const table = f64(randn((2 * l.wh - 1) * (2 * l.ww - 1) * heads, 44));
    const bias = relativePositionBiasRef(table, heads, l);
    const mask = attnMaskRef(l);
    expect(bias.length).toBe((mask ? windowsOf(l) : 1) * heads * N * N);
    // Token 0 against itself reads the centre of the table.
    expect(bias[heads * N * N - N * N]).toBe(table[((l.wh - 1) * (2 * l.ww - 1) + l.ww - 1) * heads + heads - 1]);
    const w = f64(randn(bias.length, 45));
    expectGrad('dtable', relativePositionBiasBackwardRef(w, heads, l.wh, l.ww), table, () => dot(relativePositionBiasRef(table, heads, l), w));
  });

  test.each([[1, ...layouts[0]!], [2, ...layouts[1]!]] as const)('window attention with bias and mask: dqkv, dtable and dscores against finite differences, B=%i, %s', (B, _, l) => {
    const s = { B, heads: 2, hd: 2, layout: l };
    const N = l.wh * l.ww;
    const Bw = s.B * windowsOf(l);
    const D = s.heads * s.hd;
    const qkv = f64(randn(Bw * N * 3 * D, 46));
    const table = f64(randn((2 * l.wh - 1) * (2 * l.ww - 1) * s.heads, 47));
    const w = f64(randn(Bw * N * D, 48));
    const g = windowAttentionBackwardRef(qkv, table, w, s);
    expectGrad('dqkv', g.dqkv, qkv, () => dot(windowAttentionRef(qkv, table, s).out, w));
    expectGrad('dtable', g.dtable, table, () => dot(windowAttentionRef(qkv, table, s).out, w));
    // dscores is the gradient of a full, unshared bias (B*nW, nh, N, N).
    const bias = f64(randn(Bw * s.heads * N * N, 49));
    const shape = { B: Bw, T: N, H: s.heads, hd: s.hd, scale: 1 / Math.sqrt(s.hd), bias: { data: bias, nb: Bw, nh: s.heads } };
    expectGrad('dscores', attentionScoresGradRef(qkv, w, shape), bias, () => dot(attentionRef(qkv, shape).out, w));
  });

  test('patch merging by hand: [x(2i,2j), x(2i+1,2j), x(2i,2j+1), x(2i+1,2j+1)], zero padding', () => {
    // x(y, x, c) = 100y + 10x + c on a 3x3 map with C = 2, padded to 4x4.
    const x = Array.from({ length: 18 }, (_, k) => 100 * Math.floor(k / 6) + 10 * (Math.floor(k / 2) % 3) + (k % 2));
    const out = patchMergeRef(x, 1, 3, 3, 2);
    expect(out.length).toBe(4 * 8);
    expect([...out.slice(0, 8)]).toEqual([0, 1, 100, 101, 10, 11, 110, 111]);
    expect([...out.slice(8, 16)]).toEqual([20, 21, 120, 121, 0, 0, 0, 0]);
    expect([...out.slice(24, 32)]).toEqual([220, 221, 0, 0, 0, 0, 0, 0]);
  });

  test.each([[2, 4, 6, 3], [1, 5, 3, 2]])('patch merging backward against finite differences, B=%i, %ix%i, C=%i', (B, H, W, C) => {
    const x = f64(randn(B * H * W * C, 50));
    const w = f64(randn(B * Math.ceil(H / 2) * Math.ceil(W / 2) * 4 * C, 51));
    expectGrad('dx', patchMergeBackwardRef(w, B, H, W, C), x, () => dot(patchMergeRef(x, B, H, W, C), w));
  });
});
