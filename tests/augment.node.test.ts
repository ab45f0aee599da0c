// Training augmentation: every op against a direct float64 computation on small seeded images,
// crop and flip identities, mixup and CutMix images and targets, determinism from the seed.
import { describe, expect, test } from 'vitest';
import {
  AUGMENT_PRESETS, RAND_AUGMENT_OPS, augmentBatch, autoContrast, brightness, contrast, cropBox, drawMix, equalize, hflip, invert,
  posterize, resizedCrop, resolveAugment, rotate, saturation, sharpness, solarize, solarizeAdd, translate,
  type AugmentSettings, type Img,
} from '../src/training/augment';
import { seededRandom } from '../src/training/random';
import { uniform } from './helpers/random';

/** A seeded image with values in [0, 1]. */
const image = (c: number, h: number, w: number, seed: number): Img => ({ c, h, w, data: uniform(c * h * w, seed) });
/** Pixel (ch, y, x) of an image. */
const px = (img: Img, ch: number, y: number, x: number) => img.data[ch * img.h * img.w + y * img.w + x]!;

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-6): void {
  expect(got.length).toBe(want.length);
  let worst = 0, at = -1;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i]! - want[i]!);
    if (!(e <= worst)) { worst = e; at = i; }
  }
  expect(worst, `max abs error at ${at}: got ${got[at]}, want ${want[at]}`).toBeLessThanOrEqual(tol);
}

/** The image with f(v, ch, y, x) at every pixel, in float64. */
function direct(img: Img, f: (v: number, ch: number, y: number, x: number) => number): Float64Array {
  const out = new Float64Array(img.data.length);
  for (let ch = 0; ch < img.c; ch++) for (let y = 0; y < img.h; y++) for (let x = 0; x < img.w; x++) out[ch * img.h * img.w + y * img.w + x] = f(px(img, ch, y, x), ch, y, x);
  return out;
}

const lumaOf = (img: Img, y: number, x: number) => (img.c === 1 ? px(img, 0, y, x) : 0.299 * px(img, 0, y, x) + 0.587 * px(img, 1, y, x) + 0.114 * px(img, 2, y, x));
const clamp01 = (v: number) => Math.min(1, Math.max(0, v));
const FILL = [0.25, 0.5, 0.75];
const OFF: AugmentSettings = AUGMENT_PRESETS.none;

describe('crop and flip', () => {
  test('flipping twice is the identity; once mirrors each row', () => {
    const img = image(3, 5, 7, 1);
    const once = hflip(img);
    expect(Array.from(hflip(once).data)).toEqual(Array.from(img.data));
    expectClose(once.data, direct(img, (_, ch, y, x) => px(img, ch, y, img.w - 1 - x)), 0);
  });

  test('a crop with scale = ratio = 1 takes the whole image and resizing it changes nothing', () => {
    const r = seededRandom(3, 0);
    for (const [h, w] of [[8, 8], [28, 28]]) {
      const box = cropBox(h!, w!, [1, 1], [1, 1], r);
      expect(box).toEqual({ x: 0, y: 0, w, h });
    }
    const img = image(3, 9, 9, 2);
    expect(Array.from(resizedCrop(img, { x: 0, y: 0, w: 9, h: 9 }).data)).toEqual(Array.from(img.data));
  });

  test('a crop is resized bilinearly with pixel centres aligned and the box edges clamped', () => {
    // A ramp along x: value = column index. Box columns [2, 6) stretched to 8 columns.
    const img: Img = { c: 1, h: 3, w: 8, data: Float32Array.from({ length: 24 }, (_, i) => i % 8) };
    const out = resizedCrop(img, { x: 2, y: 0, w: 4, h: 3 });
    const want = direct(img, (_, __, ___, x) => 2 + Math.min(Math.max(0, (x + 0.5) / 2 - 0.5), 3));
    expectClose(out.data, want, 1e-6);
  });

  test('crop boxes fit, stay in the scale and ratio ranges up to rounding, and fall back to a centre crop', () => {
    const r = seededRandom(4, 0);
    for (let i = 0; i < 500; i++) {
      const b = cropBox(28, 40, [0.08, 1], [3 / 4, 4 / 3], r);
      expect(b.x >= 0 && b.y >= 0 && b.x + b.w <= 40 && b.y + b.h <= 28).toBe(true);
      expect(b.w * b.h).toBeGreaterThan(0.08 * 28 * 40 * 0.6);
    }
    // No box of ratio >= 4 fits a square at full area: torchvision's fallback, full width, h = w / 4.
    expect(cropBox(20, 20, [1, 1], [4, 5], r)).toEqual({ x: 0, y: 7, w: 20, h: 5 });
    expect(cropBox(20, 20, [1, 1], [0.2, 0.25], r)).toEqual({ x: 7, y: 0, w: 5, h: 20 });
  });
});

describe('colour and level ops against float64', () => {
  const img = image(3, 6, 5, 10);
  const grey = image(1, 6, 5, 11);

  test('invert, solarize, solarize-add', () => {
    expectClose(invert(img).data, direct(img, (v) => 1 - v));
    expectClose(solarize(img, 128).data, direct(img, (v) => (v * 255 >= 128 ? 1 - v : v)));
    expectClose(solarize(img, 256).data, img.data, 0);
    expectClose(solarizeAdd(img, 60).data, direct(img, (v) => (v * 255 < 128 ? Math.min(1, v + 60 / 255) : v)));
  });

  test('posterize keeps the top bits of the 8-bit level', () => {
    for (const bits of [0, 1, 2, 4, 7]) {
      const keep = 256 - 2 ** (8 - bits);
      expectClose(posterize(img, bits).data, direct(img, (v) => (Math.round(v * 255) & keep) / 255));
    }
    expectClose(posterize(img, 8).data, img.data, 0);
  });

  test('brightness, contrast and saturation with known factors', () => {
    expectClose(brightness(img, 1.3).data, direct(img, (v) => clamp01(1.3 * v)));
    for (const im of [img, grey]) {
      let mean = 0;
      for (let y = 0; y < im.h; y++) for (let x = 0; x < im.w; x++) mean += lumaOf(im, y, x) / (im.h * im.w);
      expectClose(contrast(im, 0.6).data, direct(im, (v) => clamp01(mean + 0.6 * (v - mean))));
      expectClose(contrast(im, 1.8).data, direct(im, (v) => clamp01(mean + 1.8 * (v - mean))));
    }
    expectClose(saturation(img, 0.5).data, direct(img, (v, _, y, x) => clamp01(lumaOf(img, y, x) + 0.5 * (v - lumaOf(img, y, x)))));
    expectClose(saturation(img, 0).data, direct(img, (_, __, y, x) => lumaOf(img, y, x)));
    expect(saturation(grey, 0.3).data).toEqual(grey.data);
  });

  test('sharpness blends with the 3x3 smoothing filter inside and leaves the border', () => {
    const smooth = (ch: number, y: number, x: number) => {
      if (y === 0 || x === 0 || y === img.h - 1 || x === img.w - 1) return px(img, ch, y, x);
      let s = 4 * px(img, ch, y, x);
      for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) s += px(img, ch, y + dy, x + dx);
      return s / 13;
    };
    for (const f of [0, 0.4, 1.7]) expectClose(sharpness(img, f).data, direct(img, (v, ch, y, x) => clamp01(smooth(ch, y, x) + f * (v - smooth(ch, y, x)))));
  });

  test('autocontrast stretches each channel to [0, 1]; a flat channel stays', () => {
    const lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity];
    direct(img, (v, ch) => { lo[ch] = Math.min(lo[ch]!, v); hi[ch] = Math.max(hi[ch]!, v); return 0; });
    expectClose(autoContrast(img).data, direct(img, (v, ch) => (v - lo[ch]!) / (hi[ch]! - lo[ch]!)));
    const flat: Img = { c: 1, h: 2, w: 2, data: new Float32Array(4).fill(0.3) };
    expect(autoContrast(flat).data).toEqual(flat.data);
  });

  test('equalize follows PIL: the cumulative histogram through a half-step lookup table', () => {
    // Levels 0, 10, 10, 20, 20, 20, 200, 255 (8 pixels): PIL's step = (8 - 1) // 255 = 0, so PIL
    // leaves it; with 600 pixels it maps each level to the rounded cumulative count below it.
    const levels = Array.from({ length: 600 }, (_, i) => [0, 10, 10, 20, 20, 20, 200, 255][i % 8]!);
    const im: Img = { c: 1, h: 20, w: 30, data: Float32Array.from(levels, (l) => l / 255) };
    const hist = new Array(256).fill(0);
    for (const l of levels) hist[l]++;
    const step = Math.floor((600 - hist[255]) / 255);
    const below = (l: number) => hist.slice(0, l).reduce((a: number, b: number) => a + b, 0);
    expectClose(equalize(im).data, levels.map((l) => Math.min(255, Math.floor((Math.floor(step / 2) + below(l)) / step)) / 255));
    const small: Img = { c: 1, h: 2, w: 4, data: Float32Array.from([0, 10, 10, 20, 20, 20, 200, 255], (l) => l / 255) };
    expect(equalize(small).data).toEqual(small.data);
  });
});

describe('geometric ops', () => {
  test('rotating by 90 degrees is a transposition (numpy rot90), by 180 a flip of both axes', () => {
    const img = image(3, 7, 7, 20);
    expectClose(rotate(img, 90, FILL).data, direct(img, (_, ch, y, x) => px(img, ch, x, img.w - 1 - y)), 1e-6);
    expectClose(rotate(img, -90, FILL).data, direct(img, (_, ch, y, x) => px(img, ch, img.h - 1 - x, y)), 1e-6);
    expectClose(rotate(img, 180, FILL).data, direct(img, (_, ch, y, x) => px(img, ch, img.h - 1 - y, img.w - 1 - x)), 1e-6);
    expectClose(rotate(img, 0, FILL).data, img.data, 0);
  });

  test('translating by whole pixels shifts the content and fills with the mean', () => {
    const img = image(3, 6, 8, 21);
    const shifted = (dx: number, dy: number) => direct(img, (_, ch, y, x) => {
      const sx = x + dx, sy = y + dy;
      return sx >= 0 && sx < img.w && sy >= 0 && sy < img.h ? px(img, ch, sy, sx) : FILL[ch]!;
    });
    expectClose(translate(img, 2, 0, FILL).data, shifted(2, 0), 0);
    expectClose(translate(img, 0, -3, FILL).data, shifted(0, -3), 0);
    expectClose(translate(img, -1, 1, FILL).data, shifted(-1, 1), 0);
  });

  test('a half-pixel translation averages neighbours, and the fill beyond the border', () => {
    const img = image(1, 4, 4, 22);
    const out = translate(img, 0.5, 0, [0.5]);
    for (let y = 0; y < 4; y++) {
      for (let x = 0; x < 3; x++) expect(px(out, 0, y, x)).toBeCloseTo((px(img, 0, y, x) + px(img, 0, y, x + 1)) / 2, 6);
      expect(px(out, 0, y, 3)).toBeCloseTo((px(img, 0, y, 3) + 0.5) / 2, 6);
    }
  });
});

describe('RandAugment', () => {
  const img = image(3, 8, 8, 30);
  const plus = () => 0.9; // timm's _randomly_negate keeps the sign for draws >= 0.5

  test("the op set is timm's 'increasing' set", () => {
    expect(Object.keys(RAND_AUGMENT_OPS).sort()).toEqual([
      'AutoContrast', 'BrightnessIncreasing', 'ColorIncreasing', 'ContrastIncreasing', 'Equalize', 'Invert', 'PosterizeIncreasing',
      'Rotate', 'SharpnessIncreasing', 'ShearX', 'ShearY', 'SolarizeAdd', 'SolarizeIncreasing', 'TranslateXRel', 'TranslateYRel',
    ]);
  });

  test('magnitudes map to the strengths of timm\'s level functions', () => {
    const ops = RAND_AUGMENT_OPS;
    expect(ops.PosterizeIncreasing!(img, 9, plus, FILL).data).toEqual(posterize(img, 1).data);
    expect(ops.PosterizeIncreasing!(img, 4, plus, FILL).data).toEqual(posterize(img, 3).data);
    expect(ops.SolarizeIncreasing!(img, 9, plus, FILL).data).toEqual(solarize(img, 26).data);
    expect(ops.SolarizeAdd!(img, 9, plus, FILL).data).toEqual(solarizeAdd(img, 99).data);
    expect(ops.BrightnessIncreasing!(img, 10, plus, FILL).data).toEqual(brightness(img, 1.9).data);
    expect(ops.ContrastIncreasing!(img, 10, () => 0.1, FILL).data).toEqual(contrast(img, 1 - 0.9).data);
    expect(ops.Rotate!(img, 10, plus, FILL).data).toEqual(rotate(img, 30, FILL).data);
    expect(ops.TranslateXRel!(img, 10, () => 0.1, FILL).data).toEqual(translate(img, -0.45 * 8, 0, FILL).data);
  });

  test('every op at the recipe\'s magnitude keeps values finite and in [0, 1]', () => {
    const r = seededRandom(5, 0);
    for (const [name, op] of Object.entries(RAND_AUGMENT_OPS)) {
      for (const im of [img, image(1, 8, 8, 31)]) {
        const out = op(im, 9, r, FILL.slice(0, im.c));
        expect(Array.from(out.data).filter((v) => !(v >= 0 && v <= 1)), name).toEqual([]);
      }
    }
  });
});

describe('mixup and CutMix', () => {
  const B = 6, C = 3, H = 8, W = 8, K = 5;
  const per = C * H * W;
  const input = uniform(B * per, 40, -2, 2);
  const labels = [0, 3, 1, 4, 4, 2];
  const ctx = { mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3], numClasses: K, smoothing: 0.1 };
  const shape = { n: B, c: C, h: H, w: W };
  const oneHot = (label: number) => Array.from({ length: K }, (_, k) => (k === label ? 1 - 0.1 + 0.1 / K : 0.1 / K));

  test('mixup images and targets are the lambda-weighted sums with the reversed batch; rows sum to 1', () => {
    const s = { ...OFF, mixup: 0.8 };
    const out = augmentBatch(input, labels, shape, ctx, s, seededRandom(6, 1));
    expect(out.mix.kind).toBe('mixup');
    const lam = out.mix.lambda;
    expect(lam > 0 && lam < 1).toBe(true);
    const want = new Float64Array(B * per);
    for (let b = 0; b < B; b++) for (let i = 0; i < per; i++) want[b * per + i] = lam * input[b * per + i]! + (1 - lam) * input[(B - 1 - b) * per + i]!;
    expectClose(out.images, want, 2e-6);
    for (let b = 0; b < B; b++) {
      const row = oneHot(labels[b]!).map((v, k) => lam * v + (1 - lam) * oneHot(labels[B - 1 - b]!)[k]!);
      expectClose(out.targets.subarray(b * K, (b + 1) * K), row, 1e-7);
      expect(out.targets.subarray(b * K, (b + 1) * K).reduce((a, v) => a + v, 0)).toBeCloseTo(1, 6);
    }
  });

  test('CutMix pastes the partner inside the box and lambda is 1 minus the box area fraction', () => {
    const s = { ...OFF, cutmix: 1 };
    let checked = 0;
    for (let seed = 0; seed < 20; seed++) {
      const out = augmentBatch(input, labels, shape, ctx, s, seededRandom(seed, 7));
      expect(out.mix.kind).toBe('cutmix');
      const { y0, y1, x0, x1 } = out.mix.box!;
      expect(out.mix.lambda).toBeCloseTo(1 - ((y1 - y0) * (x1 - x0)) / (H * W), 12);
      if (y1 > y0 && x1 > x0) checked++;
      for (let b = 0; b < B; b++) {
        for (let ch = 0; ch < C; ch++) {
          for (let y = 0; y < H; y++) {
            for (let x = 0; x < W; x++) {
              const inBox = y >= y0 && y < y1 && x >= x0 && x < x1;
              const i = ch * H * W + y * W + x;
              const from = inBox ? B - 1 - b : b;
              expect(Math.abs(out.images[b * per + i]! - input[from * per + i]!)).toBeLessThan(2e-6);
            }
          }
        }
        const lam = out.mix.lambda;
        expectClose(out.targets.subarray(b * K, (b + 1) * K), oneHot(labels[b]!).map((v, k) => lam * v + (1 - lam) * oneHot(labels[B - 1 - b]!)[k]!), 1e-7);
      }
    }
    expect(checked).toBeGreaterThan(10);
  });

  test('lambda follows Beta(alpha, alpha): mean 1/2 and the right variance; the switch picks CutMix at its rate', () => {
    const r = seededRandom(8, 0);
    const lams: number[] = [];
    let cut = 0;
    for (let i = 0; i < 4000; i++) {
      const m = drawMix({ ...AUGMENT_PRESETS.seed, cutmix: 0 }, 32, 32, r);
      lams.push(m.lambda);
      if (drawMix(AUGMENT_PRESETS.seed, 32, 32, r).kind === 'cutmix') cut++;
    }
    const mean = lams.reduce((a, b) => a + b, 0) / lams.length;
    const variance = lams.reduce((a, b) => a + (b - mean) ** 2, 0) / lams.length;
    const a = 0.8;
    expect(mean).toBeCloseTo(0.5, 1);
    expect(Math.abs(variance / (a * a / ((2 * a) ** 2 * (2 * a + 1))) - 1)).toBeLessThan(0.08);
    expect(cut / 4000).toBeGreaterThan(0.45);
    expect(cut / 4000).toBeLessThan(0.55);
  });

  test('without mixing the targets are the labels; a batch that mixProb leaves unmixed gets smoothed one-hots', () => {
    for (const s of [AUGMENT_PRESETS.light, { ...OFF, mixup: 0.8, mixProb: 0 }]) {
      expect(Array.from(augmentBatch(input, labels, shape, ctx, s, seededRandom(9, 0)).targets)).toEqual(labels);
    }
    const kinds = new Set<string>();
    for (let step = 0; step < 20; step++) {
      const out = augmentBatch(input, labels, shape, ctx, { ...OFF, mixup: 0.8, mixProb: 0.5 }, seededRandom(9, step));
      kinds.add(out.mix.kind);
      if (out.mix.kind !== 'none') continue;
      expectClose(out.images, input, 2e-6);
      expectClose(out.targets, labels.flatMap(oneHot), 1e-7);
    }
    expect([...kinds].sort()).toEqual(['mixup', 'none']);
  });
});

describe('the whole batch', () => {
  const B = 4, C = 3, S = 16;
  const input = uniform(B * C * S * S, 50, -2, 2);
  const labels = Int32Array.from([0, 1, 2, 1]);
  const ctx = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], numClasses: 3, smoothing: 0.1 };
  const shape = { n: B, c: C, h: S, w: S };
  const seed = AUGMENT_PRESETS.seed;

  test('with everything off the batch comes back unchanged (up to un- and re-normalising)', () => {
    const out = augmentBatch(input, labels, shape, ctx, { ...OFF, crop: { scale: [1, 1], ratio: [1, 1] } }, seededRandom(1, 1));
    expectClose(out.images, input, 2e-6);
  });

  test('the same seed and step give the same batch; another seed or step another', () => {
    const run = (s: number, step: number) => augmentBatch(input, labels, shape, ctx, seed, seededRandom(s, step));
    const a = run(7, 3), b = run(7, 3);
    expect(Array.from(a.images)).toEqual(Array.from(b.images));
    expect(Array.from(a.targets)).toEqual(Array.from(b.targets));
    for (const other of [run(8, 3), run(7, 4)]) expect(Array.from(other.images)).not.toEqual(Array.from(a.images));
  });

  test('the seed recipe keeps images finite and inside the normalised [0, 1] range, grey and colour', () => {
    const grey = { ...ctx, mean: [0.286], std: [0.353] };
    const greyInput = uniform(B * S * S, 51, -0.81, 2.02); // inside [0, 1] after un-normalising
    for (let step = 0; step < 30; step++) {
      for (const [x, cx, sh] of [[input, ctx, shape], [greyInput, grey, { ...shape, c: 1 }]] as const) {
        const out = augmentBatch(x, labels, sh, cx, seed, seededRandom(2, step));
        // Inputs lie inside [0, 1] once un-normalised, and every op keeps them there.
        const lo = Math.min(...cx.mean.map((m, c) => -m / cx.std[c]!));
        const hi = Math.max(...cx.mean.map((m, c) => (1 - m) / cx.std[c]!));
        // The values out of range, gathered for one assertion: ~250k single ones took seconds.
        expect(Array.from(out.images).filter((v) => !(Number.isFinite(v) && v >= lo - 1e-5 && v <= hi + 1e-5)), `step ${step}`).toEqual([]);
        expect(Array.from(out.targets).filter((v) => !(v >= 0 && v <= 1)), `step ${step}`).toEqual([]);
      }
    }
  });

  test('settings: presets by name, partial settings over the seed recipe, bad values refused', () => {
    expect(resolveAugment('none')).toBe(AUGMENT_PRESETS.none);
    expect(resolveAugment({ flip: 0 })).toEqual({ ...seed, flip: 0 });
    expect(resolveAugment({ randAugment: { ops: 1 } }).randAugment).toEqual({ ...seed.randAugment, ops: 1 });
    expect(() => resolveAugment('heavy' as 'seed')).toThrow(/unknown preset "heavy"/);
    expect(() => resolveAugment({ flip: 1.5 })).toThrow(/flip must be a probability/);
    expect(() => resolveAugment({ crop: { scale: [0.5, 0.2], ratio: [1, 1] } })).toThrow(/crop scale/);
    expect(() => resolveAugment({ mixup: -1 })).toThrow(/alphas/);
  });

  test('the seeded stream is uniform enough: mean, spread, and no repeats in a long run', () => {
    const r = seededRandom(0, 0);
    const xs = Array.from({ length: 20000 }, r);
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean).toBeCloseTo(0.5, 2);
    expect(new Set(xs).size).toBe(xs.length);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
  });
});
