// Float64 reference of the dense per-patch head, in the seed's order: the patch tokens as a grid,
// bilinear upsampling to the image (PyTorch's F.interpolate(mode='bilinear', align_corners=False)),
// then the MLP on every pixel, then the per-pixel loss. The engine moves the first Linear before
// the upsampling; this reference does not, so comparing the two also checks that they commute.
// Backward passes are written out by hand and checked by finite differences
// (tests/segmentation.node.test.ts). Arrays are row-major, channels last.
import { geluBackwardRef, geluRef } from './ops';

export interface GridShape {
  B: number;
  /** Tokens before the grid in each image (class, registers). */
  prefix: number;
  h: number;
  w: number;
  /** Output height and width. */
  Ho: number;
  Wo: number;
  C: number;
}

/**
 * PyTorch's upsample_bilinear2d for align_corners=False and an output size (aten's
 * area_pixel_compute_source_index): src = scale (dst + 0.5) - 0.5 with scale = in / out, negative
 * sources clamped to 0, the upper neighbour clamped to the last cell.
 */
function taps(dst: number, nIn: number, nOut: number): [number, number, number, number] {
  const src = Math.max((nIn / nOut) * (dst + 0.5) - 0.5, 0);
  const i0 = Math.min(Math.floor(src), nIn - 1);
  const i1 = i0 < nIn - 1 ? i0 + 1 : i0;
  const l1 = src - i0;
  return [i0, i1, 1 - l1, l1];
}

/** x (B, prefix + h*w, C) -> (B, Ho*Wo, C). */
export function upsampleBilinearRef(x: ArrayLike<number>, s: GridShape): Float64Array {
  const { B, prefix, h, w, Ho, Wo, C } = s;
  const T = prefix + h * w;
  const out = new Float64Array(B * Ho * Wo * C);
  for (let b = 0; b < B; b++) {
    for (let oy = 0; oy < Ho; oy++) {
      const [y0, y1, wy0, wy1] = taps(oy, h, Ho);
      for (let ox = 0; ox < Wo; ox++) {
        const [x0, x1, wx0, wx1] = taps(ox, w, Wo);
        for (let c = 0; c < C; c++) {
          const at = (y: number, xx: number) => x[(b * T + prefix + y * w + xx) * C + c]!;
          out[((b * Ho + oy) * Wo + ox) * C + c] = wy0 * (wx0 * at(y0, x0) + wx1 * at(y0, x1)) + wy1 * (wx0 * at(y1, x0) + wx1 * at(y1, x1));
        }
      }
    }
  }
  return out;
}

/** The transpose of upsampleBilinearRef: each output's gradient scattered to its four taps; prefix rows 0. */
export function upsampleBilinearBackwardRef(dout: ArrayLike<number>, s: GridShape): Float64Array {
  const { B, prefix, h, w, Ho, Wo, C } = s;
  const T = prefix + h * w;
  const dx = new Float64Array(B * T * C);
  for (let b = 0; b < B; b++) {
    for (let oy = 0; oy < Ho; oy++) {
      const [y0, y1, wy0, wy1] = taps(oy, h, Ho);
      for (let ox = 0; ox < Wo; ox++) {
        const [x0, x1, wx0, wx1] = taps(ox, w, Wo);
        for (let c = 0; c < C; c++) {
          const g = dout[((b * Ho + oy) * Wo + ox) * C + c]!;
          const add = (y: number, xx: number, weight: number) => {
            const i = (b * T + prefix + y * w + xx) * C + c;
            dx[i] = dx[i]! + weight * g;
          };
          add(y0, x0, wy0 * wx0);
          add(y0, x1, wy0 * wx1);
          add(y1, x0, wy1 * wx0);
          add(y1, x1, wy1 * wx1);
        }
      }
    }
  }
  return dx;
}

/**
 * Per-pixel loss and d(loss)/d(logits) * gradScale: sigmoid BCE for K = 1 (targets in [0, 1]),
 * softmax cross-entropy for K >= 2 (targets are class indices). A target out of range gives NaN.
 */
export function pixelLossRef(logits: ArrayLike<number>, targets: ArrayLike<number>, N: number, K: number, gradScale = 1 / N): { loss: Float64Array; dlogits: Float64Array } {
  const loss = new Float64Array(N);
  const dlogits = new Float64Array(N * K);
  for (let n = 0; n < N; n++) {
    const t = targets[n]!;
    if (K === 1) {
      const z = logits[n]!;
      const p = 1 / (1 + Math.exp(-z));
      loss[n] = t >= 0 && t <= 1 ? -(t * Math.log(p) + (1 - t) * Math.log(1 - p)) : NaN;
      dlogits[n] = (p - t) * gradScale;
      continue;
    }
    const row = Array.from({ length: K }, (_, k) => logits[n * K + k]!);
    const max = Math.max(...row);
    const logZ = max + Math.log(row.reduce((s, z) => s + Math.exp(z - max), 0));
    const valid = Number.isInteger(t) && t >= 0 && t < K;
    loss[n] = valid ? logZ - row[t]! : NaN;
    row.forEach((z, k) => (dlogits[n * K + k] = (Math.exp(z - logZ) - (k === t ? 1 : 0)) * gradScale));
  }
  return { loss, dlogits };
}

/** Linear layers in order: weight [out, in], bias [out]. */
export interface HeadParams { weights: ArrayLike<number>[]; biases: ArrayLike<number>[] }

function linear(x: ArrayLike<number>, rows: number, W: ArrayLike<number>, bias: ArrayLike<number>, nIn: number, nOut: number): Float64Array {
  const y = new Float64Array(rows * nOut);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < nOut; o++) {
      let s = bias[o]!;
      for (let i = 0; i < nIn; i++) s += x[r * nIn + i]! * W[o * nIn + i]!;
      y[r * nOut + o] = s;
    }
  }
  return y;
}

/**
 * The head in the seed's order: upsample the tokens' grid to (Ho, Wo), then Linear, GELU, ...,
 * Linear on every pixel; `widths` = [D, hidden..., K]. Returns the logits [B*Ho*Wo, K], the mean
 * per-pixel loss against `targets`, and the gradients of that mean: per layer dW, db, and d(tokens).
 */
export function segHeadRef(tokens: ArrayLike<number>, s: Omit<GridShape, 'C'>, widths: number[], p: HeadParams, targets: ArrayLike<number>): {
  logits: Float64Array; loss: number; dW: Float64Array[]; db: Float64Array[]; dtokens: Float64Array;
} {
  const grid = { ...s, C: widths[0]! };
  const N = s.B * s.Ho * s.Wo;
  const K = widths.at(-1)!;
  const layers = widths.length - 1;
  // acts[i]: the input of layer i (the upsampled tokens, then GELU of each hidden pre-activation).
  const acts: Float64Array[] = [upsampleBilinearRef(tokens, grid)];
  const pre: Float64Array[] = [];
  for (let i = 0; i < layers; i++) {
    pre.push(linear(acts[i]!, N, p.weights[i]!, p.biases[i]!, widths[i]!, widths[i + 1]!));
    if (i < layers - 1) acts.push(geluRef(pre[i]!));
  }
  const logits = pre[layers - 1]!;
  const { loss, dlogits } = pixelLossRef(logits, targets, N, K);
  const dW: Float64Array[] = [];
  const db: Float64Array[] = [];
  let dy = dlogits;
  for (let i = layers - 1; i >= 0; i--) {
    const nIn = widths[i]!;
    const nOut = widths[i + 1]!;
    const w = new Float64Array(nOut * nIn);
    const bb = new Float64Array(nOut);
    const dx = new Float64Array(N * nIn);
    for (let r = 0; r < N; r++) {
      for (let o = 0; o < nOut; o++) {
        const g = dy[r * nOut + o]!;
        bb[o] = bb[o]! + g;
        for (let k = 0; k < nIn; k++) {
          w[o * nIn + k] = w[o * nIn + k]! + g * acts[i]![r * nIn + k]!;
          dx[r * nIn + k] = dx[r * nIn + k]! + g * p.weights[i]![o * nIn + k]!;
        }
      }
    }
    dW[i] = w;
    db[i] = bb;
    dy = i > 0 ? geluBackwardRef(pre[i - 1]!, dx) : dx;
  }
  return { logits, loss: loss.reduce((a, b) => a + b, 0) / N, dW, db, dtokens: upsampleBilinearBackwardRef(dy, grid) };
}
