// Attention maps against direct float64 computations on seeded random attention: the cls row of
// one head or of fused heads, and rollout as the plain matrix product of (A + I) with rows
// renormalised; where a patch looks, on hand-made window layouts (shift, wrap-around, padding) and a ViT.
import { describe, expect, test } from 'vitest';
import { attentionRollout, clsAttention, patchAttention, type HeadFusion } from '../src/engine/attentionMaps';
import { rng } from './helpers/random';

/** Random row-stochastic attention, (H, T, T). */
function randomAttention(H: number, T: number, seed: number): Float32Array {
  const next = rng(seed);
  const p = new Float32Array(H * T * T);
  for (let r = 0; r < H * T; r++) {
    let sum = 0;
    for (let j = 0; j < T; j++) sum += p[r * T + j] = next() ** 3;
    for (let j = 0; j < T; j++) p[r * T + j] = p[r * T + j]! / sum;
  }
  return p;
}

const at = (p: Float32Array, T: number, h: number, i: number, j: number) => p[h * T * T + i * T + j]!;

describe('clsAttention', () => {
  const H = 3;
  const T = 7; // 2 prefix tokens (cls + dist) and 5 patches
  const nTok = 2;
  const probs = randomAttention(H, T, 1);

  test('one head: that head\'s cls row over the patches', () => {
    for (let h = 0; h < H; h++) {
      expect(Array.from(clsAttention(probs, H, T, nTok, h))).toEqual(Array.from({ length: T - nTok }, (_, j) => at(probs, T, h, 0, nTok + j)));
    }
  });

  test.each<[HeadFusion, (v: number[]) => number]>([
    ['mean', (v) => v.reduce((a, b) => a + b, 0) / v.length],
    ['max', (v) => Math.max(...v)],
    ['min', (v) => Math.min(...v)],
  ])('fused heads (%s): the cls row of every head, combined per patch', (fusion, reduce) => {
    const map = clsAttention(probs, H, T, nTok, fusion);
    expect(map).toHaveLength(T - nTok);
    for (let j = 0; j < T - nTok; j++) {
      const want = reduce(Array.from({ length: H }, (_, h) => at(probs, T, h, 0, nTok + j)));
      expect(Math.abs(map[j]! - want)).toBeLessThan(1e-7);
    }
  });
});

describe('attentionRollout', () => {
  const H = 2;
  const T = 6;
  const nTok = 1;
  const layers = [randomAttention(H, T, 2), randomAttention(H, T, 3), randomAttention(H, T, 4)];

  /** R = Â_L ... Â_1 with Â = rownorm(mean_heads(A) + I); the cls row over the patches. */
  function reference(upTo: number): number[] {
    let R: number[][] | null = null;
    for (const p of layers.slice(0, upTo)) {
      const A = Array.from({ length: T }, (_, i) => {
        const row = Array.from({ length: T }, (_, j) => (at(p, T, 0, i, j) + at(p, T, 1, i, j)) / 2 + (i === j ? 1 : 0));
        const sum = row.reduce((a, b) => a + b, 0);
        return row.map((v) => v / sum);
      });
      R = R === null ? A : A.map((row) => Array.from({ length: T }, (_, j) => row.reduce((s, a, k) => s + a * R![k]![j]!, 0)));
    }
    return R![0]!.slice(nTok);
  }

  test.each([1, 2, 3])('through %i layers it is the product of the renormalised (A + I)', (upTo) => {
    const map = attentionRollout(layers, H, T, nTok, { upTo });
    const want = reference(upTo);
    for (let j = 0; j < want.length; j++) expect(Math.abs(map[j]! - want[j]!)).toBeLessThan(1e-6);
  });

  test('discarding the smallest weights changes the map; a ratio outside [0, 1) is refused', () => {
    const kept = attentionRollout(layers, H, T, nTok);
    const pruned = attentionRollout(layers, H, T, nTok, { discardRatio: 0.8 });
    expect(pruned.every(Number.isFinite)).toBe(true);
    expect(Math.max(...pruned.map((v, j) => Math.abs(v - kept[j]!)))).toBeGreaterThan(1e-3);
    expect(() => attentionRollout(layers, H, T, nTok, { discardRatio: 1 })).toThrow(/discardRatio must be in \[0, 1\), got 1/);
  });
});

describe('patchAttention', () => {
  /** (windows, heads, N, N) with p = (1 + 1000 w + 100 h + 10 q + k) / 10^4: each entry names its place, none is 0. */
  function labelled(windows: number, heads: number, N: number): Float32Array {
    const p = new Float32Array(windows * heads * N * N);
    for (let w = 0; w < windows; w++) for (let h = 0; h < heads; h++) for (let q = 0; q < N; q++) for (let k = 0; k < N; k++) {
      p[((w * heads + h) * N + q) * N + k] = (1 + 1000 * w + 100 * h + 10 * q + k) / 1e4;
    }
    return p;
  }
  const v = (w: number, h: number, q: number, k: number) => Math.fround((1 + 1000 * w + 100 * h + 10 * q + k) / 1e4);
  /** The non-zero entries of a map as { 'row,col': value }. */
  const entries = (map: Float32Array, W: number) => Object.fromEntries([...map].flatMap((x, i) => (x !== 0 ? [[`${Math.floor(i / W)},${i % W}`, x]] : [])));

  // A 4 x 4 map, 2 x 2 windows, shift 1: the rolled map holds original ((y + 1) % 4, (x + 1) % 4) at
  // (y, x), so window 0 holds rows and columns 1..2, and window 3 the four corners.
  const swin = { grid: [4, 4], window: [2, 2], shift: [1, 1], heads: 2, windows: 4, tokens: 4 } as const;
  const probs = labelled(4, 2, 4);

  test('shifted windows: a middle patch looks inside the window of rows and columns 1..2', () => {
    // (1, 1) rolls to (0, 0): window 0, query 0; its keys (0,0) (0,1) (1,0) (1,1) roll back to (1,1) (1,2) (2,1) (2,2).
    const { map, window } = patchAttention(probs, swin, 0, [1, 1], 1);
    expect(entries(map, 4)).toEqual({ '1,1': v(0, 1, 0, 0), '1,2': v(0, 1, 0, 1), '2,1': v(0, 1, 0, 2), '2,2': v(0, 1, 0, 3) });
    expect(window).toEqual([{ row: 1, col: 1, rows: 2, cols: 2 }]);
  });

  test('shifted windows: a corner patch looks at the four corners, and its window wraps into 4 rectangles', () => {
    // (0, 0) rolls to (3, 3): window 3, query 3; keys (2,2) (2,3) (3,2) (3,3) roll back to (3,3) (3,0) (0,3) (0,0).
    const { map, window } = patchAttention(probs, swin, 0, [0, 0], 0);
    expect(entries(map, 4)).toEqual({ '3,3': v(3, 0, 3, 0), '3,0': v(3, 0, 3, 1), '0,3': v(3, 0, 3, 2), '0,0': v(3, 0, 3, 3) });
    expect(window).toEqual([
      { row: 3, col: 3, rows: 1, cols: 1 }, { row: 3, col: 0, rows: 1, cols: 1 },
      { row: 0, col: 3, rows: 1, cols: 1 }, { row: 0, col: 0, rows: 1, cols: 1 },
    ]);
  });

  test('shifted windows: an edge patch\'s window wraps along one axis into 2 rectangles', () => {
    // (2, 0) rolls to (1, 3): window 1, query 3; keys (0,2) (0,3) (1,2) (1,3) roll back to (1,3) (1,0) (2,3) (2,0).
    const { map, window } = patchAttention(probs, swin, 0, [2, 0], 0);
    expect(entries(map, 4)).toEqual({ '1,3': v(1, 0, 3, 0), '1,0': v(1, 0, 3, 1), '2,3': v(1, 0, 3, 2), '2,0': v(1, 0, 3, 3) });
    expect(window).toEqual([{ row: 1, col: 3, rows: 2, cols: 1 }, { row: 1, col: 0, rows: 2, cols: 1 }]);
  });

  test.each<[HeadFusion, (a: number, b: number) => number]>([
    ['mean', (a, b) => (a + b) / 2], ['max', Math.max], ['min', Math.min],
  ])('fused heads (%s): the patch\'s row of each head, combined per key', (fusion, fuse) => {
    const { map } = patchAttention(probs, swin, 0, [1, 1], fusion);
    const keys = ['1,1', '1,2', '2,1', '2,2'];
    const got = entries(map, 4);
    expect(Object.keys(got).sort()).toEqual(keys);
    keys.forEach((key, k) => expect(Math.abs(got[key]! - fuse(v(0, 0, 0, k), v(0, 1, 0, k)))).toBeLessThan(1e-7));
  });

  test('padding: a 5 x 5 map in 3 x 3 windows shifted by 1 pads to 6 x 6; padded keys have no place, and the window wraps', () => {
    // (0, 0) rolls to (4, 4): window 3 (rolled rows and columns 3..5, 5 is padding), query (1, 1) = 4.
    // Its real keys (3,3) (3,4) (4,3) (4,4), k = 0, 1, 3, 4, roll back to (4,4) (4,0) (0,4) (0,0).
    const shape = { grid: [5, 5], window: [3, 3], shift: [1, 1], heads: 1, windows: 4, tokens: 9 } as const;
    const { map, window } = patchAttention(labelled(4, 1, 9), shape, 0, [0, 0], 0);
    expect(entries(map, 5)).toEqual({ '4,4': v(3, 0, 4, 0), '4,0': v(3, 0, 4, 1), '0,4': v(3, 0, 4, 3), '0,0': v(3, 0, 4, 4) });
    expect(window).toEqual([
      { row: 4, col: 4, rows: 1, cols: 1 }, { row: 4, col: 0, rows: 1, cols: 1 },
      { row: 0, col: 4, rows: 1, cols: 1 }, { row: 0, col: 0, rows: 1, cols: 1 },
    ]);
  });

  test('padding without a shift: a 3 x 5 map in 2 x 2 windows; the last column of windows holds one real column', () => {
    // (1, 4) sits in window (0, 2) = 2 at (1, 0), query 2; keys (0,4) (1,4) are real, (0,5) (1,5) padding.
    const shape = { grid: [3, 5], window: [2, 2], shift: [0, 0], heads: 1, windows: 6, tokens: 4 } as const;
    const { map, window } = patchAttention(labelled(6, 1, 4), shape, 0, [1, 4], 0);
    expect(entries(map, 5)).toEqual({ '0,4': v(2, 0, 2, 0), '1,4': v(2, 0, 2, 2) });
    expect(window).toEqual([{ row: 0, col: 4, rows: 2, cols: 1 }]);
  });

  test('global attention (ViT): the patch\'s row of the T x T matrix without the prefix columns; the window is the whole map', () => {
    // A 2 x 3 grid with a class and a distillation token: T = 8, patch (1, 2) is token 2 + 5 = 7.
    const H = 3;
    const T = 8;
    const vit = randomAttention(H, T, 5);
    const shape = { grid: [2, 3], window: [2, 3], shift: [0, 0], heads: H, windows: 1, tokens: T } as const;
    const { map, window } = patchAttention(vit, shape, 2, [1, 2], 2);
    expect(Array.from(map)).toEqual(Array.from({ length: 6 }, (_, j) => at(vit, T, 2, 7, 2 + j)));
    expect(window).toEqual([{ row: 0, col: 0, rows: 2, cols: 3 }]);
    const mean = patchAttention(vit, shape, 2, [0, 0], 'mean').map;
    for (let j = 0; j < 6; j++) expect(Math.abs(mean[j]! - (at(vit, T, 0, 2, 2 + j) + at(vit, T, 1, 2, 2 + j) + at(vit, T, 2, 2, 2 + j)) / 3)).toBeLessThan(1e-7);
  });

  test('a patch off the map, a head the layer lacks, and probabilities of another shape are refused', () => {
    expect(() => patchAttention(probs, swin, 0, [4, 0], 0)).toThrow(/patch \(4, 0\) is outside the 4 x 4 map/);
    expect(() => patchAttention(probs, swin, 0, [0, 0], 2)).toThrow(/head 2 is not one of this layer's 2/);
    expect(() => patchAttention(probs.subarray(1), swin, 0, [0, 0], 0)).toThrow(/do not fit 4 windows of 2 heads/);
  });
});
