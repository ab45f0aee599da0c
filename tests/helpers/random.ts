// Seeded random inputs, so every failure reproduces.

/** mulberry32: a small, fast 32-bit generator; uniform in [0, 1). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n normal samples (Box-Muller) times `scale` plus `shift`, rounded to f32 so GPU and reference see the same values. */
export function randn(n: number, seed: number, scale = 1, shift = 0): Float32Array {
  const next = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = 1 - next();
    out[i] = shift + scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
  }
  return out;
}

export function uniform(n: number, seed: number, lo = 0, hi = 1): Float32Array {
  const next = rng(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * next());
}

export const f64 = (x: ArrayLike<number>): Float64Array => Float64Array.from(x);
