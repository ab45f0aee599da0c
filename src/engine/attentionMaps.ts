// Attention maps over the patch grid, from per-layer attention probabilities (one image):
//   probs[l] (H, T, T), T = nTok + gh * gw; maps are (gh * gw) in row-major patch order.

export type HeadFusion = 'mean' | 'max' | 'min';

export interface RolloutOptions {
  /** How the heads of a layer are combined (Abnar & Zuidema 2020; 'mean' is the paper's). */
  fusion?: HeadFusion;
  /** Fraction of the smallest attention weights of each fused layer set to zero (not the cls column). */
  discardRatio?: number;
  /** Rollout through layers [0, upTo); all layers by default. */
  upTo?: number;
}

/** One step of fusing heads: a running sum (divided by H at the end), max or min. */
function combine(v: number, p: number, fusion: HeadFusion): number {
  return fusion === 'mean' ? v + p : fusion === 'max' ? Math.max(v, p) : Math.min(v, p);
}

/** One layer's heads fused into a (T, T) matrix. */
export function fuseHeads(probs: Float32Array, H: number, T: number, fusion: HeadFusion): Float64Array {
  const out = new Float64Array(T * T);
  const tt = T * T;
  for (let i = 0; i < tt; i++) {
    let v = probs[i]!;
    for (let h = 1; h < H; h++) {
      v = combine(v, probs[h * tt + i]!, fusion);
    }
    out[i] = fusion === 'mean' ? v / H : v;
  }
  return out;
}

/** The attention of the cls token (row 0) to every patch, for one head or fused heads. */
export function clsAttention(probs: Float32Array, H: number, T: number, nTok: number, head: number | HeadFusion): Float32Array {
  const tt = T * T;
  if (typeof head === 'number') return probs.slice(head * tt + nTok, head * tt + T);
  // Row 0 of each head is the cls token's attention; fuse just that row across heads.
  const out = new Float32Array(T - nTok);
  for (let j = nTok; j < T; j++) {
    let v = probs[j]!;
    for (let h = 1; h < H; h++) v = combine(v, probs[h * tt + j]!, head);
    out[j - nTok] = head === 'mean' ? v / H : v;
  }
  return out;
}

/**
 * Attention rollout: per layer A = fuse(heads), discard the smallest weights, A = (A + I) with rows
 * renormalised, R = A_L ... A_1; the map is R's cls row over the patches.
 */
export function attentionRollout(layers: readonly Float32Array[], H: number, T: number, nTok: number, options: RolloutOptions = {}): Float32Array {
  const fusion = options.fusion ?? 'mean';
  const discard = options.discardRatio ?? 0;
  if (!(discard >= 0 && discard < 1)) throw new Error(`rollout: discardRatio must be in [0, 1), got ${discard}`);
  const upTo = options.upTo ?? layers.length;
  let rollout: Float64Array | null = null;
  for (let l = 0; l < upTo; l++) {
    const a = fuseHeads(layers[l]!, H, T, fusion);
    if (discard > 0) discardSmallest(a, T, discard);
    for (let i = 0; i < T; i++) {
      a[i * T + i] = a[i * T + i]! + 1;
      let sum = 0;
      for (let j = 0; j < T; j++) sum += a[i * T + j]!;
      for (let j = 0; j < T; j++) a[i * T + j] = a[i * T + j]! / sum;
    }
    rollout = rollout ? matmulSquare(a, rollout, T) : a;
  }
  if (!rollout) throw new Error('rollout: no layers');
  return Float32Array.from(rollout.subarray(nTok, T));
}

/** Zeroes the `ratio` smallest entries, never the attention to the cls token (column 0). */
function discardSmallest(a: Float64Array, T: number, ratio: number): void {
  const candidates: number[] = [];
  for (let i = 0; i < T; i++) for (let j = 1; j < T; j++) candidates.push(i * T + j);
  candidates.sort((x, y) => a[x]! - a[y]!);
  const n = Math.floor(candidates.length * ratio);
  for (let k = 0; k < n; k++) a[candidates[k]!] = 0;
}

function matmulSquare(a: Float64Array, b: Float64Array, T: number): Float64Array {
  const out = new Float64Array(T * T);
  for (let i = 0; i < T; i++) {
    for (let k = 0; k < T; k++) {
      const aik = a[i * T + k]!;
      if (aik === 0) continue;
      for (let j = 0; j < T; j++) out[i * T + j] = out[i * T + j]! + aik * b[k * T + j]!;
    }
  }
  return out;
}
