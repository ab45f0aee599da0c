// Data augmentation for training, on the CPU, one batch before each step: the DeiT recipe as timm
// runs it. Per image: random resized crop, horizontal flip, RandAugment ('rand-m9-mstd0.5-inc1'),
// colour jitter; then per batch mixup or CutMix, with label smoothing folded into soft targets.
// DOM-free. Evaluation never comes here.
//
// Images arrive preprocessed: NCHW, normalised with the model's mean and std, C = 1 or 3. Each is
// taken back to [0, 1], augmented there and normalised again. PIL (which timm's ops use) works in
// uint8 and rounds after every op; we stay in float and quantise only where an op is defined on
// the 8-bit levels (posterize, equalize). Mixing is linear, so it runs on the normalised batch, as
// timm's Mixup does on the GPU. Every random choice comes from the step's `seededRandom` stream.
import type { Random } from './random';

/** One image, planar (C, H, W), values in [0, 1]. */
export interface Img { c: number; h: number; w: number; data: Float32Array }

export interface AugmentSettings {
  /** RandomResizedCrop: ranges of the crop's area fraction and aspect ratio (w / h); null: no crop. */
  crop: { scale: [number, number]; ratio: [number, number] } | null;
  /** Probability of a horizontal flip. */
  flip: number;
  /**
   * ColorJitter strength for brightness, contrast and saturation: factors uniform in [1 - s, 1 + s].
   * 0: none. (timm leaves jitter out when RandAugment is on; set 0 to match it exactly.)
   */
  colorJitter: number;
  /** RandAugment: ops per image (0: none), magnitude of 10, std of its per-op noise, each op's probability. */
  randAugment: { ops: number; magnitude: number; magnitudeStd: number; prob: number };
  /** Beta(alpha, alpha) of mixup and of CutMix; 0 turns each off. */
  mixup: number;
  cutmix: number;
  /** Probability that a batch is mixed at all, and of CutMix rather than mixup when both are on. */
  mixProb: number;
  switchProb: number;
}

const NO_RAND_AUGMENT = { ops: 0, magnitude: 9, magnitudeStd: 0.5, prob: 0.5 };

export const AUGMENT_PRESETS = {
  none: { crop: null, flip: 0, colorJitter: 0, randAugment: NO_RAND_AUGMENT, mixup: 0, cutmix: 0, mixProb: 1, switchProb: 0.5 },
  /**
   * Crop and flip only, for small images (28-px Fashion-MNIST) and short runs: the crop keeps at
   * least half the area, since an 8% crop of 28 px is a 8x8 patch with little left to classify.
   */
  light: { crop: { scale: [0.5, 1], ratio: [3 / 4, 4 / 3] }, flip: 0.5, colorJitter: 0, randAugment: NO_RAND_AUGMENT, mixup: 0, cutmix: 0, mixProb: 1, switchProb: 0.5 },
  /** The seed recipe (DeiT): crop, flip, jitter 0.4, rand-m9-mstd0.5-inc1, mixup 0.8, CutMix 1.0. */
  seed: {
    crop: { scale: [0.08, 1], ratio: [3 / 4, 4 / 3] }, flip: 0.5, colorJitter: 0.4,
    randAugment: { ops: 2, magnitude: 9, magnitudeStd: 0.5, prob: 0.5 },
    mixup: 0.8, cutmix: 1.0, mixProb: 1, switchProb: 0.5,
  },
} satisfies Record<string, AugmentSettings>;

export type AugmentPreset = keyof typeof AUGMENT_PRESETS;

/** Some settings; the rest are the seed recipe's. */
export type AugmentOverrides = Partial<Omit<AugmentSettings, 'randAugment'>> & { randAugment?: Partial<AugmentSettings['randAugment']> };

/** A preset by name, or settings where every field left out is the seed recipe's. Throws "augment: ..." on bad values. */
export function resolveAugment(a: AugmentPreset | AugmentOverrides): AugmentSettings {
  if (typeof a === 'string') {
    const preset = AUGMENT_PRESETS[a];
    if (!preset) throw new Error(`augment: unknown preset "${a}"; known: ${Object.keys(AUGMENT_PRESETS).join(', ')}`);
    return preset;
  }
  const s: AugmentSettings = { ...AUGMENT_PRESETS.seed, ...a, randAugment: { ...AUGMENT_PRESETS.seed.randAugment, ...a.randAugment } };
  const prob = (v: number, name: string) => {
    if (!(v >= 0 && v <= 1)) throw new Error(`augment: ${name} must be a probability in [0, 1], got ${v}`);
  };
  prob(s.flip, 'flip');
  prob(s.mixProb, 'mixProb');
  prob(s.switchProb, 'switchProb');
  prob(s.randAugment.prob, 'randAugment.prob');
  if (s.crop) {
    const [lo, hi] = s.crop.scale;
    const [rlo, rhi] = s.crop.ratio;
    if (!(lo > 0 && lo <= hi && hi <= 1)) throw new Error(`augment: crop scale must satisfy 0 < min <= max <= 1, got [${lo}, ${hi}]`);
    if (!(rlo > 0 && rlo <= rhi && Number.isFinite(rhi))) throw new Error(`augment: crop ratio must satisfy 0 < min <= max, got [${rlo}, ${rhi}]`);
  }
  if (!(s.colorJitter >= 0 && s.colorJitter <= 1)) throw new Error(`augment: colorJitter must be in [0, 1], got ${s.colorJitter}`);
  const ra = s.randAugment;
  if (!(Number.isInteger(ra.ops) && ra.ops >= 0)) throw new Error(`augment: randAugment.ops must be a non-negative integer, got ${ra.ops}`);
  if (!(ra.magnitude >= 0 && ra.magnitude <= 10) || !(ra.magnitudeStd >= 0)) throw new Error(`augment: randAugment magnitude must be in [0, 10] with std >= 0, got ${ra.magnitude} and ${ra.magnitudeStd}`);
  if (!(s.mixup >= 0 && s.cutmix >= 0 && Number.isFinite(s.mixup + s.cutmix))) throw new Error(`augment: mixup and cutmix alphas must be >= 0, got ${s.mixup} and ${s.cutmix}`);
  return s;
}

/** Whether the settings leave every batch as it is (then there is nothing to run). */
export function isOff(s: AugmentSettings): boolean {
  return !s.crop && s.flip === 0 && s.colorJitter === 0 && s.randAugment.ops === 0 && !mixes(s);
}

/** Whether batches are mixed, so targets are soft rows [B, K] rather than labels [B]. */
export function mixes(s: AugmentSettings): boolean {
  return (s.mixup > 0 || s.cutmix > 0) && s.mixProb > 0;
}

// ---------------------------------------------------------------------------------------------
// Random draws

const uniform = (r: Random, lo: number, hi: number) => lo + (hi - lo) * r();
/** An integer in [lo, hi). */
const randint = (r: Random, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo));

function gaussian(r: Random): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/** Gamma(a, 1) by Marsaglia and Tsang; a < 1 through Gamma(a + 1) * U^(1/a). */
function gamma(r: Random, a: number): number {
  if (a < 1) return gamma(r, a + 1) * Math.pow(1 - r(), 1 / a);
  const d = a - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    const x = gaussian(r);
    const v = (1 + c * x) ** 3;
    if (v <= 0) continue;
    const u = 1 - r();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}

function beta(r: Random, a: number, b: number): number {
  const x = gamma(r, a);
  const y = gamma(r, b);
  return x + y > 0 ? x / (x + y) : 0.5;
}

// ---------------------------------------------------------------------------------------------
// Pixel helpers

const clamp01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);

function blank(img: Img): Img {
  return { c: img.c, h: img.h, w: img.w, data: new Float32Array(img.data.length) };
}

function mapValues(img: Img, f: (v: number) => number): Img {
  const out = blank(img);
  for (let i = 0; i < img.data.length; i++) out.data[i] = f(img.data[i]!);
  return out;
}

/** Luma per pixel (ITU-R 601, as PIL's convert('L') and torchvision); the plane itself for C = 1. */
function grey(img: Img): Float32Array {
  const n = img.h * img.w;
  if (img.c === 1) return img.data.slice(0, n);
  const d = img.data;
  const out = new Float32Array(n);
  for (let p = 0; p < n; p++) out[p] = 0.299 * d[p]! + 0.587 * d[n + p]! + 0.114 * d[2 * n + p]!;
  return out;
}

/** factor * img + (1 - factor) * degenerate, clamped: PIL's ImageEnhance and torchvision's _blend. */
function blend(img: Img, degenerate: (i: number) => number, factor: number): Img {
  const out = blank(img);
  for (let i = 0; i < img.data.length; i++) {
    const g = degenerate(i);
    out.data[i] = clamp01(g + factor * (img.data[i]! - g));
  }
  return out;
}

/** Python's round(), half to even, which torchvision's crop sizes use. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// ---------------------------------------------------------------------------------------------
// Crop and flip

export interface Box { x: number; y: number; w: number; h: number }

/**
 * torchvision's RandomResizedCrop.get_params: ten tries at a box of random area and log-uniform
 * aspect ratio that fits, else the centre crop closest to the allowed ratios.
 */
export function cropBox(height: number, width: number, scale: [number, number], ratio: [number, number], r: Random): Box {
  const area = height * width;
  const [logLo, logHi] = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * uniform(r, scale[0], scale[1]);
    const aspect = Math.exp(uniform(r, logLo, logHi));
    const w = roundHalfEven(Math.sqrt(target * aspect));
    const h = roundHalfEven(Math.sqrt(target / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) return { y: randint(r, 0, height - h + 1), x: randint(r, 0, width - w + 1), h, w };
  }
  const inRatio = width / height;
  let w = width, h = height;
  if (inRatio < ratio[0]) h = roundHalfEven(w / ratio[0]);
  else if (inRatio > ratio[1]) w = roundHalfEven(h * ratio[1]);
  return { y: Math.floor((height - h) / 2), x: Math.floor((width - w) / 2), h, w };
}

/**
 * The box resized back to the image's size, bilinear with pixel centres aligned (torch's
 * align_corners=False) and edges clamped to the box, as cropping first and resizing would.
 * Crops are never larger than the image, so no antialiasing is needed.
 */
export function resizedCrop(img: Img, box: Box): Img {
  const { c, h: H, w: W } = img;
  const out = blank(img);
  const axis = (size: number, start: number, len: number) => {
    const lo = new Int32Array(size), hi = new Int32Array(size), t = new Float64Array(size);
    for (let i = 0; i < size; i++) {
      const src = Math.max(0, (i + 0.5) * (len / size) - 0.5);
      const i0 = Math.min(Math.floor(src), len - 1);
      lo[i] = start + i0;
      hi[i] = start + Math.min(i0 + 1, len - 1);
      t[i] = src - i0;
    }
    return { lo, hi, t };
  };
  const ax = axis(W, box.x, box.w), ay = axis(H, box.y, box.h);
  for (let ch = 0; ch < c; ch++) {
    const plane = ch * H * W;
    for (let y = 0; y < H; y++) {
      const r0 = plane + ay.lo[y]! * W, r1 = plane + ay.hi[y]! * W, ty = ay.t[y]!;
      for (let x = 0; x < W; x++) {
        const x0 = ax.lo[x]!, x1 = ax.hi[x]!, tx = ax.t[x]!;
        const top = img.data[r0 + x0]! + tx * (img.data[r0 + x1]! - img.data[r0 + x0]!);
        const bottom = img.data[r1 + x0]! + tx * (img.data[r1 + x1]! - img.data[r1 + x0]!);
        out.data[plane + y * W + x] = top + ty * (bottom - top);
      }
    }
  }
  return out;
}

export function hflip(img: Img): Img {
  const out = blank(img);
  const { w } = img;
  for (let row = 0; row < img.c * img.h; row++) {
    for (let x = 0; x < w; x++) out.data[row * w + x] = img.data[row * w + w - 1 - x]!;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Colour ops (ColorJitter and RandAugment's enhance ops share them)

/** Blend with black. */
export function brightness(img: Img, factor: number): Img {
  return blend(img, () => 0, factor);
}

/** Blend with the mean grey level of the whole image. */
export function contrast(img: Img, factor: number): Img {
  const g = grey(img);
  const mean = g.reduce((a, b) => a + b, 0) / g.length;
  return blend(img, () => mean, factor);
}

/** Blend with the image's own grey version; nothing to do for one channel. */
export function saturation(img: Img, factor: number): Img {
  if (img.c === 1) return img;
  const g = grey(img);
  const n = img.h * img.w;
  return blend(img, (i) => g[i % n]!, factor);
}

/** Blend with PIL's SMOOTH filter (3x3, centre 5, others 1, over 13); the border stays as it is. */
export function sharpness(img: Img, factor: number): Img {
  const { c, h: H, w: W, data: d } = img;
  const smooth = Float32Array.from(d);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 1; y < H - 1; y++) {
      for (let x = 1; x < W - 1; x++) {
        const i = ch * H * W + y * W + x;
        let sum = 4 * d[i]!;
        for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) sum += d[i + dy * W + dx]!;
        smooth[i] = sum / 13;
      }
    }
  }
  return blend(img, (i) => smooth[i]!, factor);
}

export function invert(img: Img): Img {
  return mapValues(img, (v) => 1 - v);
}

/** Every value at or above threshold (on the 0..256 scale of 8-bit levels) is inverted. */
export function solarize(img: Img, threshold: number): Img {
  return mapValues(img, (v) => (v * 255 >= threshold ? 1 - v : v));
}

/** Values below threshold (8-bit scale) get `add` (8-bit scale) added, saturating at white. */
export function solarizeAdd(img: Img, add: number, threshold = 128): Img {
  return mapValues(img, (v) => (v * 255 < threshold ? Math.min(1, v + add / 255) : v));
}

/** Keeps the top `bits` bits of each 8-bit level (0 bits: black). */
export function posterize(img: Img, bits: number): Img {
  if (bits >= 8) return img;
  const mask = 0xff & ~((1 << (8 - bits)) - 1);
  return mapValues(img, (v) => (Math.round(clamp01(v) * 255) & mask) / 255);
}

/** Per channel, stretches [min, max] to [0, 1]; a flat channel is left alone. */
export function autoContrast(img: Img): Img {
  const out = blank(img);
  const n = img.h * img.w;
  for (let ch = 0; ch < img.c; ch++) {
    const plane = img.data.subarray(ch * n, (ch + 1) * n);
    let lo = Infinity, hi = -Infinity;
    for (const v of plane) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    for (let p = 0; p < n; p++) out.data[ch * n + p] = hi > lo ? (plane[p]! - lo) / (hi - lo) : plane[p]!;
  }
  return out;
}

/** PIL's ImageOps.equalize per channel, on the 256 levels of 8 bits. */
export function equalize(img: Img): Img {
  const out = blank(img);
  const n = img.h * img.w;
  const level = (v: number) => Math.round(clamp01(v) * 255);
  for (let ch = 0; ch < img.c; ch++) {
    const plane = img.data.subarray(ch * n, (ch + 1) * n);
    const hist = new Float64Array(256);
    for (const v of plane) hist[level(v)]!++;
    const used = hist.filter((v) => v > 0);
    // PIL's step leaves out the last used level's count, so the top level maps to 255.
    const step = used.length > 1 ? Math.floor((n - used[used.length - 1]!) / 255) : 0;
    const lut = new Float32Array(256);
    let acc = Math.floor(step / 2);
    for (let i = 0; i < 256; i++) {
      lut[i] = step ? Math.min(255, Math.floor(acc / step)) / 255 : i / 255;
      acc += hist[i]!;
    }
    // An image PIL would leave alone (one level, or too few pixels) keeps its float values.
    for (let p = 0; p < n; p++) out.data[ch * n + p] = step ? lut[level(plane[p]!)]! : plane[p]!;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Geometric ops: PIL's affine transform, bilinear, with a fill colour outside the image

/**
 * out(x, y) = in(a X + b Y + c, d X + e Y + f) with (X, Y) the centre of output pixel (x, y), as
 * PIL's Image.transform(AFFINE). Bilinear between pixel centres; neighbours outside the image
 * count as `fill` (one value per channel), so borders fade into it rather than stepping.
 */
export function affine(img: Img, m: readonly [number, number, number, number, number, number], fill: readonly number[]): Img {
  const { c, h: H, w: W, data: d } = img;
  const out = blank(img);
  const [a, b, cc, dd, e, f] = m;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const u = a * (x + 0.5) + b * (y + 0.5) + cc - 0.5;
      const v = dd * (x + 0.5) + e * (y + 0.5) + f - 0.5;
      const x0 = Math.floor(u), y0 = Math.floor(v);
      const tx = u - x0, ty = v - y0;
      for (let ch = 0; ch < c; ch++) {
        const plane = ch * H * W;
        const at = (xx: number, yy: number) => (xx >= 0 && xx < W && yy >= 0 && yy < H ? d[plane + yy * W + xx]! : fill[ch]!);
        const top = (1 - tx) * at(x0, y0) + tx * at(x0 + 1, y0);
        const bottom = (1 - tx) * at(x0, y0 + 1) + tx * at(x0 + 1, y0 + 1);
        out.data[plane + y * W + x] = (1 - ty) * top + ty * bottom;
      }
    }
  }
  return out;
}

/**
 * Counter-clockwise by `degrees` about the image centre, as PIL's rotate, whose matrix entries are
 * rounded to 15 decimals so that multiples of 90 degrees move pixels exactly.
 */
export function rotate(img: Img, degrees: number, fill: readonly number[]): Img {
  const t = (-degrees * Math.PI) / 180;
  const round15 = (v: number) => Math.round(v * 1e15) / 1e15;
  const cos = round15(Math.cos(t)), sin = round15(Math.sin(t));
  const cx = img.w / 2, cy = img.h / 2;
  return affine(img, [cos, sin, cx - cos * cx - sin * cy, -sin, cos, cy + sin * cx - cos * cy], fill);
}

/** out(x, y) = in(x + k y, y) for ShearX; ShearY likewise with the axes swapped. */
export const shearX = (img: Img, k: number, fill: readonly number[]) => affine(img, [1, k, 0, 0, 1, 0], fill);
export const shearY = (img: Img, k: number, fill: readonly number[]) => affine(img, [1, 0, 0, k, 1, 0], fill);
/** out(x, y) = in(x + dx, y + dy): positive pixels move the content left and up. */
export const translate = (img: Img, dx: number, dy: number, fill: readonly number[]) => affine(img, [1, 0, dx, 0, 1, dy], fill);

// ---------------------------------------------------------------------------------------------
// RandAugment, timm's 'increasing' op set: every op gets stronger as the magnitude grows

/** An op at magnitude m in [0, 10]; draws its own sign where timm's level function does. */
export type RandAugmentOp = (img: Img, m: number, r: Random, fill: readonly number[]) => Img;

/** timm's _randomly_negate. */
const signed = (r: Random, v: number) => (r() < 0.5 ? -v : v);
/** timm's _enhance_increasing_level_to_arg: a blend factor in [0.1, 1.9], further from 1 as m grows. */
const enhance = (m: number, r: Random) => 1 + signed(r, (m / 10) * 0.9);

export const RAND_AUGMENT_OPS: Record<string, RandAugmentOp> = {
  AutoContrast: (img) => autoContrast(img),
  Equalize: (img) => equalize(img),
  Invert: (img) => invert(img),
  Rotate: (img, m, r, fill) => rotate(img, signed(r, (m / 10) * 30), fill),
  PosterizeIncreasing: (img, m) => posterize(img, 4 - Math.floor((m / 10) * 4)),
  SolarizeIncreasing: (img, m) => solarize(img, 256 - Math.floor((m / 10) * 256)),
  SolarizeAdd: (img, m) => solarizeAdd(img, Math.floor((m / 10) * 110)),
  ColorIncreasing: (img, m, r) => saturation(img, enhance(m, r)),
  ContrastIncreasing: (img, m, r) => contrast(img, enhance(m, r)),
  BrightnessIncreasing: (img, m, r) => brightness(img, enhance(m, r)),
  SharpnessIncreasing: (img, m, r) => sharpness(img, enhance(m, r)),
  ShearX: (img, m, r, fill) => shearX(img, signed(r, (m / 10) * 0.3), fill),
  ShearY: (img, m, r, fill) => shearY(img, signed(r, (m / 10) * 0.3), fill),
  // timm's translate_pct 0.45 of the image's width or height.
  TranslateXRel: (img, m, r, fill) => translate(img, signed(r, (m / 10) * 0.45) * img.w, 0, fill),
  TranslateYRel: (img, m, r, fill) => translate(img, 0, signed(r, (m / 10) * 0.45) * img.h, fill),
};
const OP_NAMES = Object.keys(RAND_AUGMENT_OPS);

/**
 * timm's RandAugment: `ops` ops drawn with replacement, each applied with probability `prob` at a
 * magnitude drawn around `magnitude` (std `magnitudeStd`, clipped to [0, 10]).
 */
export function randAugment(img: Img, s: AugmentSettings['randAugment'], r: Random, fill: readonly number[]): Img {
  for (let i = 0; i < s.ops; i++) {
    const op = RAND_AUGMENT_OPS[OP_NAMES[randint(r, 0, OP_NAMES.length)]!]!;
    if (r() >= s.prob) continue;
    let m = s.magnitude;
    if (s.magnitudeStd === Infinity) m = uniform(r, 0, m); // timm's 'mstdinf'
    else if (s.magnitudeStd > 0) m += s.magnitudeStd * gaussian(r);
    img = op(img, Math.min(10, Math.max(0, m)), r, fill);
  }
  return img;
}

/** torchvision's ColorJitter without hue: brightness, contrast, saturation in random order. */
export function colorJitter(img: Img, strength: number, r: Random): Img {
  const ops = [brightness, contrast, saturation];
  for (let i = ops.length - 1; i > 0; i--) {
    const j = randint(r, 0, i + 1);
    [ops[i], ops[j]] = [ops[j]!, ops[i]!];
  }
  for (const op of ops) img = op(img, uniform(r, Math.max(0, 1 - strength), 1 + strength));
  return img;
}

/** One image through crop, flip, RandAugment and jitter (timm's order: RandAugment before jitter). */
export function augmentImage(img: Img, s: AugmentSettings, r: Random, fill: readonly number[]): Img {
  if (s.crop) img = resizedCrop(img, cropBox(img.h, img.w, s.crop.scale, s.crop.ratio, r));
  if (r() < s.flip) img = hflip(img);
  if (s.randAugment.ops > 0) img = randAugment(img, s.randAugment, r, fill);
  if (s.colorJitter > 0) img = colorJitter(img, s.colorJitter, r);
  return img;
}

// ---------------------------------------------------------------------------------------------
// Mixup and CutMix over the batch (timm's Mixup, mode 'batch': image b mixes with image B-1-b)

export interface Mix {
  kind: 'none' | 'mixup' | 'cutmix';
  /** Weight of each image's own label; for CutMix 1 - the box's area fraction. */
  lambda: number;
  /** CutMix's box, rows [y0, y1) and columns [x0, x1). */
  box?: { y0: number; y1: number; x0: number; x1: number };
}

/** timm's _params_per_batch and cutmix_bbox_and_lam (with correct_lam, no min/max ratio). */
export function drawMix(s: AugmentSettings, height: number, width: number, r: Random): Mix {
  if (!mixes(s) || r() >= s.mixProb) return { kind: 'none', lambda: 1 };
  const cutmix = s.mixup > 0 && s.cutmix > 0 ? r() < s.switchProb : s.cutmix > 0;
  const alpha = cutmix ? s.cutmix : s.mixup;
  const lambda = beta(r, alpha, alpha);
  if (!cutmix) return { kind: 'mixup', lambda };
  const cut = Math.sqrt(1 - lambda);
  const cutH = Math.floor(height * cut), cutW = Math.floor(width * cut);
  const cy = randint(r, 0, height), cx = randint(r, 0, width);
  const clip = (v: number, hi: number) => Math.min(hi, Math.max(0, v));
  const box = {
    y0: clip(cy - Math.floor(cutH / 2), height), y1: clip(cy + Math.floor(cutH / 2), height),
    x0: clip(cx - Math.floor(cutW / 2), width), x1: clip(cx + Math.floor(cutW / 2), width),
  };
  // The box is clipped at the borders: lambda follows the area actually pasted.
  return { kind: 'cutmix', lambda: 1 - ((box.y1 - box.y0) * (box.x1 - box.x0)) / (height * width), box };
}

/** Mixes a batch (N, C, H, W) in place with its reverse. */
export function mixImages(images: Float32Array, shape: BatchShape, mix: Mix): void {
  if (mix.kind === 'none') return;
  const { n, c, h, w } = shape;
  const per = c * h * w;
  const src = images.slice();
  for (let b = 0; b < n; b++) {
    const self = b * per, other = (n - 1 - b) * per;
    if (mix.kind === 'mixup') {
      for (let i = 0; i < per; i++) images[self + i] = mix.lambda * src[self + i]! + (1 - mix.lambda) * src[other + i]!;
      continue;
    }
    const { y0, y1, x0, x1 } = mix.box!;
    for (let ch = 0; ch < c; ch++) {
      for (let y = y0; y < y1; y++) {
        const row = ch * h * w + y * w;
        images.set(src.subarray(other + row + x0, other + row + x1), self + row + x0);
      }
    }
  }
}

/**
 * timm's mixup_target: smoothed one-hots (off = smoothing / K, on = 1 - smoothing + off) of each
 * label and of its partner's, weighted lambda and 1 - lambda. Rows [B, K], each summing to 1.
 */
export function mixTargets(labels: ArrayLike<number>, numClasses: number, lambda: number, smoothing: number): Float32Array {
  const B = labels.length, K = numClasses;
  const off = smoothing / K;
  const on = 1 - smoothing + off;
  const out = new Float32Array(B * K).fill(off);
  for (let b = 0; b < B; b++) {
    out[b * K + labels[b]!]! += lambda * (on - off);
    out[b * K + labels[B - 1 - b]!]! += (1 - lambda) * (on - off);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The batch

export interface BatchShape { n: number; c: number; h: number; w: number }

export interface AugmentContext {
  /** The model's normalisation, one value per channel. */
  mean: readonly number[];
  std: readonly number[];
  numClasses: number;
  /** Label smoothing, folded into the targets when batches are mixed. */
  smoothing: number;
}

/**
 * Augments a normalised batch (N, C, H, W) with integer labels [N]. Returns new images and the
 * targets: soft rows [N, K] when the settings mix batches (`mixes`), else the labels [N].
 */
export function augmentBatch(images: Float32Array, labels: ArrayLike<number>, shape: BatchShape, ctx: AugmentContext, s: AugmentSettings, r: Random): { images: Float32Array; targets: Float32Array; mix: Mix } {
  const { n, c, h, w } = shape;
  const per = c * h * w;
  if (images.length !== n * per) throw new Error(`augment: ${images.length} values are not a batch of ${n}x${c}x${h}x${w}`);
  if (labels.length !== n) throw new Error(`augment: ${labels.length} labels for ${n} images`);
  if (ctx.mean.length !== c || ctx.std.length !== c) throw new Error(`augment: mean and std need ${c} values`);
  const out = new Float32Array(images.length);
  for (let b = 0; b < n; b++) {
    const img: Img = { c, h, w, data: new Float32Array(per) };
    for (let ch = 0; ch < c; ch++) {
      const m = ctx.mean[ch]!, sd = ctx.std[ch]!;
      for (let p = 0; p < h * w; p++) img.data[ch * h * w + p] = images[b * per + ch * h * w + p]! * sd + m;
    }
    // The fill of geometric ops is the dataset mean, which normalises to 0 (timm's img_mean).
    const done = augmentImage(img, s, r, ctx.mean);
    for (let ch = 0; ch < c; ch++) {
      const m = ctx.mean[ch]!, sd = ctx.std[ch]!;
      for (let p = 0; p < h * w; p++) out[b * per + ch * h * w + p] = (done.data[ch * h * w + p]! - m) / sd;
    }
  }
  if (!mixes(s)) return { images: out, targets: Float32Array.from(labels), mix: { kind: 'none', lambda: 1 } };
  const mix = drawMix(s, h, w, r);
  mixImages(out, shape, mix);
  return { images: out, targets: mixTargets(labels, ctx.numClasses, mix.lambda, ctx.smoothing), mix };
}
