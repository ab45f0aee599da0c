// Masks and metrics of the dense head, in plain TypeScript (the worker, the bench and Node tests
// share them). A mask holds one value per pixel of the model's input: for a binary head (one
// logit) 1 = foreground, 0 = background; for K classes the class index 0..K-1.
import { resizeCropGeometry, type Pixels } from '../image/preprocess';

/** Fashion-MNIST's built-in masks: garment where the grey value (0..255) is above this. */
export const GARMENT_THRESHOLD = 25;

/** 1 where the grey value is above `threshold`, else 0. */
export function maskFromPixels(grey: ArrayLike<number>, threshold = GARMENT_THRESHOLD): Float32Array {
  return Float32Array.from(grey, (v) => (v > threshold ? 1 : 0));
}

/** A binary mask from an RGBA image: foreground where any colour channel is above half (128 or more). */
export function binaryMasks(p: Pixels): Float32Array {
  return Float32Array.from({ length: p.width * p.height }, (_, i) => (Math.max(p.data[i * 4]!, p.data[i * 4 + 1]!, p.data[i * 4 + 2]!) >= 128 ? 1 : 0));
}

/** Class indices from an RGBA image: the red channel's value is the class. */
export function classMasks(p: Pixels): Float32Array {
  return Float32Array.from({ length: p.width * p.height }, (_, i) => p.data[i * 4]!);
}

/** Refuses a mask of another size than its image, or with values a head of `K` outputs cannot take; errors name `file`. */
export function checkMask(mask: Float32Array, classes: number, pixels: number, file: string): void {
  if (mask.length !== pixels) throw new Error(`mask ${file}: ${mask.length} pixels, the image has ${pixels}`);
  const top = Math.max(classes - 1, 1);
  const bad = mask.findIndex((v) => !Number.isInteger(v) || v < 0 || v > top);
  if (bad >= 0) throw new Error(`mask ${file}: pixel ${bad} has class ${mask[bad]}, outside 0..${top}`);
}

/**
 * A mask of an image's size taken through the geometry `preprocess` gives the image (resize the
 * short side, centre crop), by nearest neighbour: the mask of the model's input, [S * S].
 */
export function cropMask(mask: Float32Array, width: number, height: number, imageSize: number, cropPct: number): Float32Array {
  const g = resizeCropGeometry(width, height, imageSize, cropPct);
  const out = new Float32Array(imageSize * imageSize);
  for (let y = 0; y < imageSize; y++) {
    const sy = Math.min(height - 1, Math.floor(((y + g.cropY + 0.5) * height) / g.resizedH));
    for (let x = 0; x < imageSize; x++) {
      const sx = Math.min(width - 1, Math.floor(((x + g.cropX + 0.5) * width) / g.resizedW));
      out[y * imageSize + x] = mask[sy * width + sx]!;
    }
  }
  return out;
}

export interface SegmentationMetrics {
  /** Intersection over union of the foreground (binary), or its mean over the classes present in the target or the prediction. */
  iou: number;
  /** Dice (F1) the same way. */
  dice: number;
  pixelAccuracy: number;
}

/** Counts over batches of predictions, then IoU and Dice. Binary heads (K = 1) predict foreground where the logit is positive. */
export class SegmentationScore {
  private readonly tp: Float64Array;
  private readonly fp: Float64Array;
  private readonly fn: Float64Array;
  private correct = 0;
  private pixels = 0;

  constructor(readonly outputs: number) {
    const n = Math.max(outputs, 2);
    this.tp = new Float64Array(n);
    this.fp = new Float64Array(n);
    this.fn = new Float64Array(n);
  }

  /** The first `n` pixels of `logits` [n, K] against `targets` [n]. */
  add(logits: ArrayLike<number>, targets: ArrayLike<number>, n: number): void {
    const K = this.outputs;
    for (let p = 0; p < n; p++) {
      let pred = 0;
      if (K === 1) pred = logits[p]! > 0 ? 1 : 0;
      else for (let k = 1; k < K; k++) if (logits[p * K + k]! > logits[p * K + pred]!) pred = k;
      const t = targets[p]!;
      if (pred === t) {
        this.correct++;
        this.tp[t]!++;
      } else {
        this.fp[pred]!++;
        this.fn[t]!++;
      }
    }
    this.pixels += n;
  }

  result(): SegmentationMetrics {
    // Binary: the foreground class alone; K classes: the mean over those that occur.
    const classes = this.outputs === 1 ? [1] : Array.from({ length: this.outputs }, (_, k) => k).filter((k) => this.tp[k]! + this.fp[k]! + this.fn[k]! > 0);
    const mean = (f: (k: number) => number) => (classes.length ? classes.reduce((s, k) => s + f(k), 0) / classes.length : Number.NaN);
    const union = (k: number) => this.tp[k]! + this.fp[k]! + this.fn[k]!;
    return {
      // Nothing to find and nothing found is a perfect score.
      iou: mean((k) => (union(k) ? this.tp[k]! / union(k) : 1)),
      dice: mean((k) => (union(k) ? (2 * this.tp[k]!) / (union(k) + this.tp[k]!) : 1)),
      pixelAccuracy: this.pixels ? this.correct / this.pixels : Number.NaN,
    };
  }
}

export function segmentationMetrics(logits: ArrayLike<number>, targets: ArrayLike<number>, outputs: number): SegmentationMetrics {
  const s = new SegmentationScore(outputs);
  s.add(logits, targets, targets.length);
  return s.result();
}
