// Image preprocessing for ViT inference: antialiased resize, centre crop, normalisation to NCHW.
// Pure TypeScript with no DOM, so it runs in a Worker, on the main thread or in Node tests.
//
// Conventions follow torchvision/timm's eval transform (Resize(short side) -> CenterCrop -> ToTensor
// -> Normalize) with the antialiased triangle filter of PIL's BILINEAR / torch's antialias=True,
// computed in float without PIL's uint8 rounding between passes. With these choices the output
// matches the project's golden input (a numpy reimplementation) to float32 precision.
import type { ImageSize, ModelConfig } from '../graph/family';

/** Decoded pixels, RGBA row-major like ImageData. */
export interface Pixels {
  width: number;
  height: number;
  data: Uint8ClampedArray | Uint8Array;
  channels: 4;
}

export type PreprocessConfig = Pick<ModelConfig, 'imageSize' | 'cropPct' | 'mean' | 'std' | 'inChannels'>;

/** Largest image decoded at full size; bigger ones are downscaled while decoding (see fitWithin). */
export const MAX_IMAGE_PIXELS = 64 * 1024 * 1024;

/** The largest size with the same aspect ratio and at most maxPixels pixels (each side >= 1). */
export function fitWithin(width: number, height: number, maxPixels = MAX_IMAGE_PIXELS): { width: number; height: number } {
  if (width * height <= maxPixels) return { width, height };
  const s = Math.sqrt(maxPixels / (width * height));
  // floor keeps the product under the limit. An extreme panorama whose short side would round
  // to 0 keeps 1 pixel there and gives the long side the whole budget.
  const w = Math.floor(width * s);
  const h = Math.floor(height * s);
  if (h < 1) return { width: Math.min(width, Math.floor(maxPixels)), height: 1 };
  if (w < 1) return { width: 1, height: Math.min(height, Math.floor(maxPixels)) };
  return { width: w, height: h };
}

/** Throws "image: ..." when the pixels cannot be what they claim to be. */
export function checkPixels(p: Pixels): void {
  if (!Number.isInteger(p.width) || !Number.isInteger(p.height) || p.width < 0 || p.height < 0) {
    throw new Error(`image: width and height must be non-negative integers, got ${p.width}x${p.height}`);
  }
  if (p.width === 0 || p.height === 0) throw new Error(`image: zero-size image (${p.width}x${p.height})`);
  if (p.data.length !== p.width * p.height * 4) {
    throw new Error(`image: ${p.width}x${p.height} RGBA needs ${p.width * p.height * 4} bytes, data has ${p.data.length}`);
  }
}

/** Python's round(): half to even. torchvision computes crop offsets with it (80.5 -> 80). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Resampling weights for one axis, PIL's precompute_coeffs: output i is centred on input
 * coordinate (i + 0.5) * scale (pixel centres aligned); the triangle filter is stretched by the
 * downscale factor so every input pixel contributes (antialiasing), and stays of radius 1 when
 * enlarging (plain bilinear). Weights are renormalised, which at the borders acts as edge clamping.
 */
interface AxisWeights { start: Int32Array; taps: number; w: Float64Array }

function axisWeights(inSize: number, outSize: number): AxisWeights {
  const scale = inSize / outSize;
  const stretch = Math.max(scale, 1);
  const support = stretch; // triangle radius 1, stretched
  const taps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const w = new Float64Array(outSize * taps);
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const hi = Math.min(Math.trunc(center + support + 0.5), inSize);
    let sum = 0;
    for (let x = lo; x < hi; x++) {
      const v = Math.max(0, 1 - Math.abs((x - center + 0.5) / stretch));
      w[i * taps + x - lo] = v;
      sum += v;
    }
    for (let k = 0; k < hi - lo; k++) w[i * taps + k] = w[i * taps + k]! / sum;
    start[i] = lo;
  }
  return { start, taps, w };
}

/**
 * Resizes to outW x outH and returns the window [x0, x0 + w) x [y0, y0 + h) of the result as
 * interleaved RGB floats (h, w, 3) in 0..255. Cropping here skips columns and rows we would throw
 * away. Horizontal pass first, as PIL does; the intermediate is float32 (error ~1e-5 of 255).
 */
function resizeWindow(src: Pixels, outW: number, outH: number, x0: number, y0: number, w: number, h: number): Float32Array {
  checkPixels(src);
  if (!(outW > 0 && outH > 0 && Number.isInteger(outW) && Number.isInteger(outH))) {
    throw new Error(`image: output size must be positive integers, got ${outW}x${outH}`);
  }
  const wx = axisWeights(src.width, outW);
  const wy = axisWeights(src.height, outH);
  // Only the source rows the window's output rows read.
  const rowLo = wy.start[y0]!;
  const rowHi = Math.min(wy.start[y0 + h - 1]! + wy.taps, src.height);
  const tmp = new Float32Array((rowHi - rowLo) * w * 3); // (rows, w, 3)
  const d = src.data;
  for (let y = rowLo; y < rowHi; y++) {
    for (let i = 0; i < w; i++) {
      const lo = wx.start[x0 + i]!;
      const n = Math.min(wx.taps, src.width - lo);
      const wo = (x0 + i) * wx.taps;
      let r = 0, g = 0, b = 0;
      for (let k = 0; k < n; k++) {
        const c = wx.w[wo + k]!;
        if (c === 0) continue;
        const p = (y * src.width + lo + k) * 4;
        r += c * d[p]!;
        g += c * d[p + 1]!;
        b += c * d[p + 2]!;
      }
      const t = ((y - rowLo) * w + i) * 3;
      tmp[t] = r;
      tmp[t + 1] = g;
      tmp[t + 2] = b;
    }
  }
  const out = new Float32Array(h * w * 3);
  for (let j = 0; j < h; j++) {
    const lo = wy.start[y0 + j]!;
    const n = Math.min(wy.taps, src.height - lo);
    const wo = (y0 + j) * wy.taps;
    for (let k = 0; k < n; k++) {
      const c = wy.w[wo + k]!;
      if (c === 0) continue;
      const row = (lo + k - rowLo) * w * 3;
      const o = j * w * 3;
      for (let t = 0; t < w * 3; t++) out[o + t]! += c * tmp[row + t]!;
    }
  }
  return out;
}

/**
 * Antialiased bilinear resize (PIL BILINEAR / torchvision antialias=True semantics, in float).
 * Returns interleaved RGB (outH, outW, 3), values in 0..255; alpha is ignored.
 */
export function resizeAntialiased(src: Pixels, outW: number, outH: number): Float32Array {
  return resizeWindow(src, outW, outH, 0, 0, outW, outH);
}

/**
 * Where preprocess resizes to and crops from, for an image of width x height and a square target
 * side or a [height, width] target. timm's eval transform: scale_size = floor(target / cropPct);
 * a square target resizes the short side to it (torchvision's Resize(int)); a non-square one
 * resizes by the smaller of the two side ratios, keeping the aspect ratio (timm's
 * ResizeKeepRatio), then both centre-crop the target.
 */
export function resizeCropGeometry(width: number, height: number, target: ImageSize, cropPct: number) {
  const [outH, outW] = typeof target === 'number' ? [target, target] : target;
  let resizedW: number, resizedH: number;
  if (outH === outW) {
    const short = Math.floor(outH / cropPct); // timm's scale_size: 256 for 224 at 0.875
    const scale = short / Math.min(width, height);
    // The long side keeps the aspect ratio; never below the short side, so the crop always fits.
    const long = Math.max(short, roundHalfEven(Math.max(width, height) * scale));
    resizedW = width <= height ? short : long;
    resizedH = width <= height ? long : short;
  } else {
    const ratio = Math.min(height / Math.floor(outH / cropPct), width / Math.floor(outW / cropPct));
    // Never below the crop, which rounding could otherwise leave a pixel short of.
    resizedH = Math.max(outH, roundHalfEven(height / ratio));
    resizedW = Math.max(outW, roundHalfEven(width / ratio));
  }
  return {
    resizedW, resizedH,
    cropX: roundHalfEven((resizedW - outW) / 2),
    cropY: roundHalfEven((resizedH - outH) / 2),
  };
}

/**
 * Eval-time preprocessing of a batch: resize the short side to floor(S / cropPct), centre-crop
 * S x S, scale to 0..1, normalise per channel. Returns NCHW (N, C, H, W) with H = W = imageSize, or
 * the [height, width] given as `size` (see resizeCropGeometry), and C = inChannels (3: RGB; 1:
 * ITU-R 601 luma, computed from the float RGB so no rounding is added).
 */
export function preprocess(images: Pixels[], cfg: PreprocessConfig, size: ImageSize = cfg.imageSize): Float32Array {
  const [H, W] = typeof size === 'number' ? [size, size] : size;
  const C = cfg.inChannels;
  for (const side of [H, W]) if (!Number.isInteger(side) || side <= 0) throw new Error(`image: the input size must be positive integers, got ${H}x${W}`);
  if (C !== 1 && C !== 3) throw new Error(`image: preprocessing supports 1 (grey) or 3 (RGB) input channels, got ${C}`);
  if (cfg.mean.length !== C || cfg.std.length !== C) throw new Error(`image: mean and std need ${C} values, got ${cfg.mean.length} and ${cfg.std.length}`);
  if (!(cfg.cropPct > 0 && cfg.cropPct <= 1)) throw new Error(`image: cropPct must be in (0, 1], got ${cfg.cropPct}`);
  // Fold /255 and the normalisation into one multiply-add per value: (v / 255 - mean) / std.
  const mul = cfg.std.map((s) => 1 / (255 * s));
  const add = cfg.mean.map((m, c) => -m / cfg.std[c]!);
  const plane = H * W;
  const out = new Float32Array(images.length * C * plane);
  images.forEach((img, n) => {
    checkPixels(img);
    const g = resizeCropGeometry(img.width, img.height, [H, W], cfg.cropPct);
    const rgb = resizeWindow(img, g.resizedW, g.resizedH, g.cropX, g.cropY, W, H);
    const base = n * C * plane;
    for (let p = 0; p < plane; p++) {
      const r = rgb[p * 3]!, gr = rgb[p * 3 + 1]!, b = rgb[p * 3 + 2]!;
      if (C === 3) {
        out[base + p] = r * mul[0]! + add[0]!;
        out[base + plane + p] = gr * mul[1]! + add[1]!;
        out[base + 2 * plane + p] = b * mul[2]! + add[2]!;
      } else {
        out[base + p] = (0.299 * r + 0.587 * gr + 0.114 * b) * mul[0]! + add[0]!;
      }
    }
  });
  return out;
}
