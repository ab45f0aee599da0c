// Float64 references of the Swin Transformer's pieces, written after timm 1.0's
// swin_transformer.py step by step: torch.roll, F.pad, window_partition (view + permute),
// window_reverse, get_relative_position_index, the img_mask built by slices, PatchMerging's
// reshape + permute. Maps are (B, H, W, C) row-major. Each backward is the composition of the
// adjoints of the forward's steps, checked by finite differences in tests/reference.node.test.ts.
import { attentionBackwardRef, attentionRef } from './ops';

export interface Map4 { data: Float64Array; B: number; H: number; W: number; C: number }

export const map4 = (data: ArrayLike<number>, B: number, H: number, W: number, C: number): Map4 => ({ data: Float64Array.from(data), B, H, W, C });

const at = (m: Map4, b: number, y: number, x: number, c: number): number => ((b * m.H + y) * m.W + x) * m.C + c;
const mod = (a: number, n: number): number => ((a % n) + n) % n;

/** torch.roll(x, shifts=(sy, sx), dims=(1, 2)): out[(y + sy) mod H] = in[y]. */
export function roll(m: Map4, sy: number, sx: number): Map4 {
  const out = { ...m, data: new Float64Array(m.data.length) };
  for (let b = 0; b < m.B; b++) for (let y = 0; y < m.H; y++) for (let x = 0; x < m.W; x++) for (let c = 0; c < m.C; c++) {
    out.data[at(out, b, mod(y + sy, m.H), mod(x + sx, m.W), c)] = m.data[at(m, b, y, x, c)]!;
  }
  return out;
}

/** F.pad(x, (0, 0, 0, padW, 0, padH)): zeros at the bottom and right. */
export function pad(m: Map4, padH: number, padW: number): Map4 {
  const out = { ...m, H: m.H + padH, W: m.W + padW, data: new Float64Array(m.B * (m.H + padH) * (m.W + padW) * m.C) };
  for (let b = 0; b < m.B; b++) for (let y = 0; y < m.H; y++) for (let x = 0; x < m.W; x++) for (let c = 0; c < m.C; c++) {
    out.data[at(out, b, y, x, c)] = m.data[at(m, b, y, x, c)]!;
  }
  return out;
}

/** x[:, :H, :W, :]. The adjoint of pad. */
export function crop(m: Map4, H: number, W: number): Map4 {
  const out = { ...m, H, W, data: new Float64Array(m.B * H * W * m.C) };
  for (let b = 0; b < m.B; b++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < m.C; c++) {
    out.data[at(out, b, y, x, c)] = m.data[at(m, b, y, x, c)]!;
  }
  return out;
}

/**
 * window_partition: x.view(B, H/wh, wh, W/ww, ww, C).permute(0, 1, 3, 2, 4, 5) -> (B*nW, wh*ww, C).
 * Written as the permute: out index (b, gy, gx, py, px, c) reads view index (b, gy, py, gx, px, c).
 */
export function windowPartitionRef(m: Map4, wh: number, ww: number): Float64Array {
  const [gh, gw] = [m.H / wh, m.W / ww];
  if (!Number.isInteger(gh) || !Number.isInteger(gw)) throw new Error('window_partition needs a padded map');
  const out = new Float64Array(m.data.length);
  let o = 0;
  for (let b = 0; b < m.B; b++) for (let gy = 0; gy < gh; gy++) for (let gx = 0; gx < gw; gx++) {
    for (let py = 0; py < wh; py++) for (let px = 0; px < ww; px++) for (let c = 0; c < m.C; c++) {
      out[o++] = m.data[((((b * gh + gy) * wh + py) * gw + gx) * ww + px) * m.C + c]!;
    }
  }
  return out;
}

/** window_reverse: the inverse permutation of windowPartitionRef, to (B, H, W, C). */
export function windowReverseRef(windows: ArrayLike<number>, B: number, H: number, W: number, C: number, wh: number, ww: number): Map4 {
  const [gh, gw] = [H / wh, W / ww];
  const out = map4(new Float64Array(B * H * W * C), B, H, W, C);
  let o = 0;
  for (let b = 0; b < B; b++) for (let gy = 0; gy < gh; gy++) for (let gx = 0; gx < gw; gx++) {
    for (let py = 0; py < wh; py++) for (let px = 0; px < ww; px++) for (let c = 0; c < C; c++) {
      out.data[((((b * gh + gy) * wh + py) * gw + gx) * ww + px) * C + c] = windows[o++]!;
    }
  }
  return out;
}

export interface SwinLayout { H: number; W: number; wh: number; ww: number; sh: number; sw: number }

export const paddedSize = (l: SwinLayout): [number, number] => [Math.ceil(l.H / l.wh) * l.wh, Math.ceil(l.W / l.ww) * l.ww];

/** SwinTransformerBlock._attn up to the attention: roll(-s), pad, partition. x (B, H*W, C) -> (B*nW, N, C). */
export function swinWindowsRef(x: ArrayLike<number>, B: number, C: number, l: SwinLayout): Float64Array {
  const [Hp, Wp] = paddedSize(l);
  return windowPartitionRef(pad(roll(map4(x, B, l.H, l.W, C), -l.sh, -l.sw), Hp - l.H, Wp - l.W), l.wh, l.ww);
}

/** The rest of _attn: window_reverse, crop, roll(+s). (B*nW, N, C) -> (B, H*W, C). */
export function swinUnwindowsRef(windows: ArrayLike<number>, B: number, C: number, l: SwinLayout): Float64Array {
  const [Hp, Wp] = paddedSize(l);
  return roll(crop(windowReverseRef(windows, B, Hp, Wp, C, l.wh, l.ww), l.H, l.W), l.sh, l.sw).data;
}

/** Backward of swinWindowsRef: the adjoints in reverse order (partition -> reverse, pad -> crop, roll(-s) -> roll(+s)). */
export function swinWindowsBackwardRef(dwindows: ArrayLike<number>, B: number, C: number, l: SwinLayout): Float64Array {
  const [Hp, Wp] = paddedSize(l);
  const dpadded = windowReverseRef(dwindows, B, Hp, Wp, C, l.wh, l.ww);
  return roll(crop(dpadded, l.H, l.W), l.sh, l.sw).data;
}

/** Backward of swinUnwindowsRef: roll(+s) -> roll(-s), crop -> pad with zeros, reverse -> partition. */
export function swinUnwindowsBackwardRef(dx: ArrayLike<number>, B: number, C: number, l: SwinLayout): Float64Array {
  const [Hp, Wp] = paddedSize(l);
  const rolled = roll(map4(dx, B, l.H, l.W, C), -l.sh, -l.sw);
  return windowPartitionRef(pad(rolled, Hp - l.H, Wp - l.W), l.wh, l.ww);
}

// ---- relative position bias and mask ----

/** get_relative_position_index: (N, N) with index[i, j] = (yi - yj + wh - 1) * (2ww - 1) + (xi - xj + ww - 1). */
export function relativePositionIndexRef(wh: number, ww: number): Int32Array {
  const N = wh * ww;
  // coords_flatten: (2, N), token t at (t // ww, t % ww); relative = coords[:, :, None] - coords[:, None, :].
  const cy = Array.from({ length: N }, (_, t) => Math.floor(t / ww));
  const cx = Array.from({ length: N }, (_, t) => t % ww);
  const index = new Int32Array(N * N);
  for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) {
    index[i * N + j] = (cy[i]! - cy[j]! + wh - 1) * (2 * ww - 1) + (cx[i]! - cx[j]! + ww - 1);
  }
  return index;
}

/** Python's slice(start, stop) over [0, n) as the list of indices it selects (None = undefined). */
function pySlice(n: number, start: number | undefined, stop: number | undefined): number[] {
  const norm = (v: number) => (v < 0 ? Math.max(0, n + v) : Math.min(v, n));
  const [a, b] = [start === undefined ? 0 : norm(start), stop === undefined ? n : norm(stop)];
  return Array.from({ length: Math.max(0, b - a) }, (_, k) => a + k);
}

/** timm's img_mask over the padded (Hp, Wp) map: region ids 0..8 filled by the 3 x 3 slices, rows outer. */
export function imgMaskRef(l: SwinLayout): Map4 {
  const [Hp, Wp] = paddedSize(l);
  const img = map4(new Float64Array(Hp * Wp), 1, Hp, Wp, 1);
  const slices = (win: number, s: number): [number | undefined, number | undefined][] => [[0, -win], [-win, -s], [-s, undefined]];
  let cnt = 0;
  for (const [h0, h1] of slices(l.wh, l.sh)) {
    for (const [w0, w1] of slices(l.ww, l.sw)) {
      for (const y of pySlice(Hp, h0, h1)) for (const x of pySlice(Wp, w0, w1)) img.data[y * Wp + x] = cnt;
      cnt++;
    }
  }
  return img;
}

/** attn_mask (nW, N, N): 0 where two tokens of a window share a region of img_mask, -100 elsewhere; undefined when unshifted. */
export function attnMaskRef(l: SwinLayout): Float64Array | undefined {
  if (l.sh === 0 && l.sw === 0) return undefined;
  const ids = windowPartitionRef(imgMaskRef(l), l.wh, l.ww); // (nW, N)
  const N = l.wh * l.ww;
  const nW = ids.length / N;
  const mask = new Float64Array(nW * N * N);
  for (let w = 0; w < nW; w++) for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) {
    mask[(w * N + i) * N + j] = ids[w * N + j]! - ids[w * N + i]! !== 0 ? -100 : 0;
  }
  return mask;
}

/** bias (planes, nh, N, N) = table[index[i, j], h] (+ mask[w, i, j]); planes = nW with a mask, else 1. */
export function relativePositionBiasRef(table: ArrayLike<number>, heads: number, l: SwinLayout): Float64Array {
  const N = l.wh * l.ww;
  const index = relativePositionIndexRef(l.wh, l.ww);
  const mask = attnMaskRef(l);
  const planes = mask ? mask.length / (N * N) : 1;
  const bias = new Float64Array(planes * heads * N * N);
  for (let w = 0; w < planes; w++) for (let h = 0; h < heads; h++) for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) {
    bias[((w * heads + h) * N + i) * N + j] = table[index[i * N + j]! * heads + h]! + (mask ? mask[(w * N + i) * N + j]! : 0);
  }
  return bias;
}

/** dtable ((2wh-1)(2ww-1), nh): the gather's adjoint, a scatter-add of dbias (P, nh, N, N) over every plane. */
export function relativePositionBiasBackwardRef(dbias: ArrayLike<number>, heads: number, wh: number, ww: number): Float64Array {
  const N = wh * ww;
  const index = relativePositionIndexRef(wh, ww);
  const dtable = new Float64Array((2 * wh - 1) * (2 * ww - 1) * heads);
  const planes = dbias.length / (heads * N * N);
  for (let p = 0; p < planes; p++) for (let h = 0; h < heads; h++) for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) {
    const k = index[i * N + j]! * heads + h;
    dtable[k] = dtable[k]! + dbias[((p * heads + h) * N + i) * N + j]!;
  }
  return dtable;
}

// ---- window attention ----

export interface WindowAttentionShape { B: number; heads: number; hd: number; layout: SwinLayout }

const windowCount = (l: SwinLayout): number => (paddedSize(l)[0] / l.wh) * (paddedSize(l)[1] / l.ww);

function attentionShape(table: ArrayLike<number>, s: WindowAttentionShape) {
  const N = s.layout.wh * s.layout.ww;
  const bias = relativePositionBiasRef(table, s.heads, s.layout);
  return { B: s.B * windowCount(s.layout), T: N, H: s.heads, hd: s.hd, scale: 1 / Math.sqrt(s.hd), bias: { data: bias, nb: bias.length / (s.heads * N * N), nh: s.heads } };
}

/** WindowAttention.forward on qkv (B*nW, N, 3*nh*hd): softmax(q k^T hd^-0.5 + rel_pos_bias + mask) v. */
export function windowAttentionRef(qkv: ArrayLike<number>, table: ArrayLike<number>, s: WindowAttentionShape) {
  return attentionRef(qkv, attentionShape(table, s));
}

/** dscores (B', nh, T, T) = P (dP - rowsum(P dP)) with dP = dO V^T: the gradient of the scores, hence of an additive bias. */
export function attentionScoresGradRef(qkv: ArrayLike<number>, dout: ArrayLike<number>, s: { B: number; T: number; H: number; hd: number; scale: number; bias?: { data: ArrayLike<number>; nb: number; nh: number } }): Float64Array {
  const { B, T, H, hd } = s;
  const D = H * hd;
  const { probs } = attentionRef(qkv, s);
  const ds = new Float64Array(B * H * T * T);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let i = 0; i < T; i++) {
    const row = ((b * H + h) * T + i) * T;
    const dP = new Float64Array(T);
    for (let j = 0; j < T; j++) for (let d = 0; d < hd; d++) dP[j] = dP[j]! + dout[(b * T + i) * D + h * hd + d]! * qkv[(b * T + j) * 3 * D + 2 * D + h * hd + d]!;
    let rowDot = 0;
    for (let j = 0; j < T; j++) rowDot += probs[row + j]! * dP[j]!;
    for (let j = 0; j < T; j++) ds[row + j] = probs[row + j]! * (dP[j]! - rowDot);
  }
  return ds;
}

/** Backward of windowAttentionRef: dqkv, the scores' gradient (B*nW, nh, N, N) and dtable. */
export function windowAttentionBackwardRef(qkv: ArrayLike<number>, table: ArrayLike<number>, dout: ArrayLike<number>, s: WindowAttentionShape) {
  const shape = attentionShape(table, s);
  const dscores = attentionScoresGradRef(qkv, dout, shape);
  return { dqkv: attentionBackwardRef(qkv, dout, shape), dscores, dtable: relativePositionBiasBackwardRef(dscores, s.heads, s.layout.wh, s.layout.ww) };
}

// ---- patch merging ----

/** PatchMerging: pad to even H, W, then reshape(B, H/2, 2, W/2, 2, C).permute(0, 1, 3, 4, 2, 5).flatten(3): (B, H*W, C) -> (B, Ho*Wo, 4C). */
export function patchMergeRef(x: ArrayLike<number>, B: number, H: number, W: number, C: number): Float64Array {
  const xp = pad(map4(x, B, H, W, C), H % 2, W % 2);
  const [Ho, Wo] = [xp.H / 2, xp.W / 2];
  const out = new Float64Array(B * Ho * Wo * 4 * C);
  let o = 0;
  // Output dims (b, i, j, dx, dy, c) read the reshaped dims (b, i, dy, j, dx, c).
  for (let b = 0; b < B; b++) for (let i = 0; i < Ho; i++) for (let j = 0; j < Wo; j++) {
    for (let dx = 0; dx < 2; dx++) for (let dy = 0; dy < 2; dy++) for (let c = 0; c < C; c++) {
      out[o++] = xp.data[((((b * Ho + i) * 2 + dy) * Wo + j) * 2 + dx) * C + c]!;
    }
  }
  return out;
}

/** Backward of patchMergeRef: the inverse permutation, then crop (the padding's gradient is dropped). */
export function patchMergeBackwardRef(dout: ArrayLike<number>, B: number, H: number, W: number, C: number): Float64Array {
  const [Hp, Wp] = [H + (H % 2), W + (W % 2)];
  const [Ho, Wo] = [Hp / 2, Wp / 2];
  const dxp = map4(new Float64Array(B * Hp * Wp * C), B, Hp, Wp, C);
  let o = 0;
  for (let b = 0; b < B; b++) for (let i = 0; i < Ho; i++) for (let j = 0; j < Wo; j++) {
    for (let dx = 0; dx < 2; dx++) for (let dy = 0; dy < 2; dy++) for (let c = 0; c < C; c++) {
      dxp.data[((((b * Ho + i) * 2 + dy) * Wo + j) * 2 + dx) * C + c] = dout[o++]!;
    }
  }
  return crop(dxp, H, W).data;
}
