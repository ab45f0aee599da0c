// Attention maps over the patch grid, from per-layer attention probabilities (one image):
//   probs[l] (H, T, T), T = nTok + gh * gw; maps are (gh * gw) in row-major patch order.
// patchAttention also reads windowed layers (Swin): probs (windows, H, N, N), one layer's own map.

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

/** One layer's attention layout, as AttentionResult.shapes gives it. */
export interface LayerShape {
  /** The layer's token map (rows, columns). */
  grid: readonly [number, number];
  window: readonly [number, number];
  shift: readonly [number, number];
  heads: number;
  windows: number;
  /** Tokens per window, prefix tokens included. */
  tokens: number;
}

/** A block of map positions: rows [row, row + rows), columns [col, col + cols). */
export interface MapRect { row: number; col: number; rows: number; cols: number }

export interface PatchAttention {
  /** Where the patch looks, over the layer's map (h * w, row-major); 0 outside its window. */
  map: Float32Array;
  /** The patch's window on the (unrolled) map: one rectangle, or up to 4 where a shifted window wraps. */
  window: MapRect[];
}

/**
 * Where one patch looks in one layer: the patch's row of its window's attention, each key's
 * weight put back at the key's position on the layer's map. A window holds the prefix tokens
 * (global attention only), then the rolled, padded map's tokens row-major; see BlockAttention.
 * The prefix columns and padded keys have no place on the map and are left out.
 *   probs (windows, heads, N, N), N = prefixTokens + wh * ww; patch = (row, column) on the map.
 */
export function patchAttention(probs: Float32Array, shape: LayerShape, prefixTokens: number, patch: readonly [number, number], head: number | HeadFusion): PatchAttention {
  const [H, W] = shape.grid;
  const [wh, ww] = shape.window;
  const [sh, sw] = shape.shift;
  const { heads, tokens: N } = shape;
  const gw = Math.ceil(W / ww);
  const windows = Math.ceil(H / wh) * gw;
  if (shape.windows !== windows || N !== prefixTokens + wh * ww || probs.length !== windows * heads * N * N) {
    throw new Error(`patch attention: ${probs.length} probabilities do not fit ${shape.windows} windows of ${heads} heads and ${N} tokens over a ${H} x ${W} map with ${wh} x ${ww} windows and ${prefixTokens} prefix tokens`);
  }
  const [r, c] = patch;
  if (!(Number.isInteger(r) && Number.isInteger(c) && r >= 0 && r < H && c >= 0 && c < W)) {
    throw new Error(`patch attention: patch (${r}, ${c}) is outside the ${H} x ${W} map`);
  }
  if (typeof head === 'number' && !(Number.isInteger(head) && head >= 0 && head < heads)) {
    throw new Error(`patch attention: head ${head} is not one of this layer's ${heads}`);
  }
  // The patch's place in the rolled map (timm rolls by -shift), its window and its row there.
  const y = (r - sh + H) % H;
  const x = (c - sw + W) % W;
  const wy = Math.floor(y / wh);
  const wx = Math.floor(x / ww);
  const query = prefixTokens + (y % wh) * ww + (x % ww);
  const rowOf = (h: number) => (((wy * gw + wx) * heads + h) * N + query) * N;
  const map = new Float32Array(H * W);
  for (let k = 0; k < wh * ww; k++) {
    // The key's place in the rolled map; past the map's edge it is padding.
    const ky = wy * wh + Math.floor(k / ww);
    const kx = wx * ww + (k % ww);
    if (ky >= H || kx >= W) continue;
    const j = prefixTokens + k;
    let v: number;
    if (typeof head === 'number') {
      v = probs[rowOf(head) + j]!;
    } else {
      v = probs[rowOf(0) + j]!;
      for (let h = 1; h < heads; h++) v = combine(v, probs[rowOf(h) + j]!, head);
      if (head === 'mean') v /= heads;
    }
    map[((ky + sh) % H) * W + ((kx + sw) % W)] = v;
  }
  // The window's rows and columns on the rolled map, less padding, rolled back (wrapping at most once).
  const span = (start: number, size: number, side: number, shift: number): [number, number][] => {
    const length = Math.min(size, side - start);
    const from = (start + shift) % side;
    return from + length <= side ? [[from, length]] : [[from, side - from], [0, from + length - side]];
  };
  const window = span(wy * wh, wh, H, sh).flatMap(([row, rows]) => span(wx * ww, ww, W, sw).map(([col, cols]) => ({ row, col, rows, cols })));
  return { map, window };
}
