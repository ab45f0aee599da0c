// The project's random generators, seeded so that every run can be repeated exactly: mulberry32
// for weight initialisation and the order of training examples, and a stream per training step
// for augmentation (a resumed run then augments its next batch as the uninterrupted one would).

/** Uniform in [0, 1). */
export type Random = () => number;

/** mulberry32: a small, fast 32-bit generator. */
export function mulberry32(seed: number): Random {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** 0 .. n-1 in a Fisher-Yates order drawn from mulberry32(seed). */
export function shuffled(n: number, seed: number): Int32Array {
  const order = Int32Array.from({ length: n }, (_, i) => i);
  const random = mulberry32(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = (random() * (i + 1)) | 0;
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/**
 * sfc32 seeded from (seed, step) through murmur3's finaliser: a separate stream for every training
 * step, so a resumed run augments its next batch exactly as the uninterrupted one would.
 */
export function seededRandom(seed: number, step: number): Random {
  const mix = (x: number) => {
    x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
    x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
    return (x ^ (x >>> 16)) >>> 0;
  };
  let a = mix(seed ^ 0x9e3779b9), b = mix((step + 0x7f4a7c15) | 0), c = mix(a ^ b ^ 0x632be5ab), d = 1;
  const next = () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 12; i++) next(); // let the seeds diffuse through the state
  return next;
}
