// Attention maps against direct float64 computations on seeded random attention: the cls row of
// one head or of fused heads, and rollout as the plain matrix product of (A + I) with rows
// renormalised.
import { describe, expect, test } from 'vitest';
import { attentionRollout, clsAttention, type HeadFusion } from '../src/engine/attentionMaps';
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
