import { describe, expect, test } from 'vitest';
import { fitWithin, preprocess, resizeAntialiased, resizeCropGeometry, type Pixels } from '../src/image/preprocess';

/** An RGBA image whose R, G and B are all f(x, y) (alpha 255). */
function image(width: number, height: number, f: (x: number, y: number) => number): Pixels {
  const data = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = (y * width + x) * 4;
      data[p] = data[p + 1] = data[p + 2] = f(x, y);
      data[p + 3] = 255;
    }
  }
  return { width, height, data, channels: 4 };
}

/** Channel 0 of an interleaved RGB result, as a plain array. */
const red = (rgb: Float32Array) => Array.from(rgb.filter((_, i) => i % 3 === 0));

describe('resizeAntialiased', () => {
  test('a constant image stays constant, shrinking and enlarging', () => {
    const src = image(37, 23, () => 200);
    for (const [w, h] of [[10, 7], [37, 23], [80, 51], [1, 1]] as const) {
      for (const v of resizeAntialiased(src, w, h)) expect(v).toBeCloseTo(200, 4);
    }
  });

  test('same size is the identity, exactly', () => {
    const src = image(13, 9, (x, y) => (x * 31 + y * 17) % 256);
    const rgb = resizeAntialiased(src, 13, 9);
    for (let p = 0; p < 13 * 9; p++) {
      for (let c = 0; c < 3; c++) expect(rgb[p * 3 + c]).toBe(src.data[p * 4 + c]);
    }
  });

  test('a 2x2 checker shrunk to 1x1 is its mean; inside an 8x8 checker shrunk by 2 too', () => {
    const checker = (x: number, y: number) => ((x + y) % 2 ? 250 : 10);
    expect(red(resizeAntialiased(image(2, 2, checker), 1, 1))[0]).toBeCloseTo(130, 4);
    // Interior outputs see taps 1/8, 3/8, 3/8, 1/8 per axis: the alternating values average out.
    const out = red(resizeAntialiased(image(8, 8, checker), 4, 4));
    for (const y of [1, 2]) for (const x of [1, 2]) expect(out[y * 4 + x]).toBeCloseTo(130, 4);
  });

  test('4x1 -> 2x1 by hand: triangle of radius 2, weights 3/7 3/7 1/7 at the edges', () => {
    // Output 0 is centred at input coordinate 1 (between pixels 0 and 1, whose centres are 0.5 and
    // 1.5): tent(0.5/2) = 0.75 for both, tent(1.5/2) = 0.25 for pixel 2, pixel 3 is beyond the
    // support; normalised by 1.75. Output 1 is the mirror image.
    const out = red(resizeAntialiased(image(4, 1, (x) => [0, 70, 140, 210][x]!), 2, 1));
    expect(out[0]).toBeCloseTo((3 * 0 + 3 * 70 + 1 * 140) / 7, 4); // 50
    expect(out[1]).toBeCloseTo((1 * 70 + 3 * 140 + 3 * 210) / 7, 4); // 160
  });

  test('a ramp stays linear away from the borders, shrinking by integer factors and enlarging', () => {
    // Exact only where the sampled tent is symmetric about the output centre: integer shrink
    // factors, and any enlargement (two taps, plain linear interpolation). At factors like 40/13
    // the discrete weights' centroid is off-centre by a fraction of a pixel, as in PIL.
    const src = image(40, 3, (x) => 6 * x); // value at pixel centre x + 0.5 is 6x
    for (const outW of [10, 20, 57, 100]) {
      const scale = 40 / outW;
      const out = red(resizeAntialiased(src, outW, 3));
      const margin = Math.ceil(Math.max(scale, 1)) + 1; // outputs whose support is clipped by the border
      for (let i = margin; i < outW - margin; i++) {
        expect(out[outW + i]).toBeCloseTo(6 * ((i + 0.5) * scale - 0.5), 3);
      }
    }
  });
});

describe('preprocess', () => {
  const cfg = { imageSize: 8, cropPct: 1, inChannels: 3, mean: [0.5, 0.25, 0], std: [0.5, 0.25, 2] };

  test('NCHW shape and (v / 255 - mean) / std per channel', () => {
    const px = new Uint8ClampedArray(8 * 8 * 4);
    for (let p = 0; p < 64; p++) px.set([255, 51, 102, 7], p * 4);
    const out = preprocess([{ width: 8, height: 8, data: px, channels: 4 }, image(8, 8, () => 0)], cfg);
    expect(out.length).toBe(2 * 3 * 8 * 8);
    const expected = [(1 - 0.5) / 0.5, (0.2 - 0.25) / 0.25, (0.4 - 0) / 2];
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < 64; p++) expect(out[c * 64 + p]).toBeCloseTo(expected[c]!, 5);
      for (let p = 0; p < 64; p++) expect(out[192 + c * 64 + p]).toBeCloseTo(-cfg.mean[c]! / cfg.std[c]!, 5);
    }
  });

  test('resize geometry: short side floor(S / cropPct), long side rounded, centred crop', () => {
    expect(resizeCropGeometry(300, 200, 224, 0.875)).toEqual({ resizedW: 384, resizedH: 256, cropX: 80, cropY: 16 });
    expect(resizeCropGeometry(200, 300, 224, 0.875)).toEqual({ resizedW: 256, resizedH: 384, cropX: 16, cropY: 80 });
    // chelsea.png: 451 x 300 -> 385 x 256; (385 - 224) / 2 = 80.5 rounds half to even, as torchvision.
    expect(resizeCropGeometry(451, 300, 224, 0.875)).toEqual({ resizedW: 385, resizedH: 256, cropX: 80, cropY: 16 });
    expect(resizeCropGeometry(32, 32, 32, 1)).toEqual({ resizedW: 32, resizedH: 32, cropX: 0, cropY: 0 });
  });

  test('the crop of a non-square image is centred (300x200 -> 384x256 -> 224 at x 80, y 16)', () => {
    // A horizontal ramp: after resizing, column i of the 384 wide image is centred at
    // source x (i + 0.5) * 300 / 384, so crop column j reads resized column 80 + j.
    const src = image(300, 200, (x) => Math.round(x * 255 / 299));
    const S = 224;
    const out = preprocess([src], { imageSize: S, cropPct: 0.875, inChannels: 3, mean: [0, 0, 0], std: [1, 1, 1] });
    const full = red(resizeAntialiased(src, 384, 256));
    for (const [y, x] of [[0, 0], [100, 5], [223, 223], [50, 111]] as const) {
      expect(out[y * S + x]).toBeCloseTo(full[(16 + y) * 384 + 80 + x]! / 255, 5);
    }
  });

  test('a non-square target [H, W] resizes by the smaller side ratio to floor(target / cropPct), keeping the aspect (timm\'s ResizeKeepRatio), then centre-crops', () => {
    // 640 x 480 to [160, 256] at 0.875: scale size (182, 292); ratios 480/182 and 640/292, the
    // smaller 2.1918, so 219 x 292 (h x w); crop rows (219 - 160) / 2 = 29.5 -> 30 (half to even).
    expect(resizeCropGeometry(640, 480, [160, 256], 0.875)).toEqual({ resizedW: 292, resizedH: 219, cropX: 18, cropY: 30 });
    // A tall image: 300 x 600 to [160, 256] at 1: ratios 600/160 = 3.75, 300/256 = 1.17 -> 512 x 256.
    expect(resizeCropGeometry(300, 600, [160, 256], 1)).toEqual({ resizedW: 256, resizedH: 512, cropX: 0, cropY: 176 });
    // A square [S, S] is the square path.
    expect(resizeCropGeometry(451, 300, [224, 224], 0.875)).toEqual(resizeCropGeometry(451, 300, 224, 0.875));
    const src = image(640, 480, (x) => Math.round(x * 255 / 639));
    const out = preprocess([src], { imageSize: 224, cropPct: 0.875, inChannels: 3, mean: [0, 0, 0], std: [1, 1, 1] }, [160, 256]);
    expect(out.length).toBe(3 * 160 * 256);
    const full = red(resizeAntialiased(src, 292, 219));
    for (const [y, x] of [[0, 0], [100, 5], [159, 255], [50, 111]] as const) {
      expect(out[y * 256 + x]).toBeCloseTo(full[(30 + y) * 292 + 18 + x]! / 255, 5);
    }
  });

  test('inChannels 1 uses ITU-R 601 luma', () => {
    const px = new Uint8ClampedArray(4 * 4 * 4);
    for (let p = 0; p < 16; p++) px.set([200, 100, 50, 0], p * 4); // alpha 0 is ignored
    const out = preprocess([{ width: 4, height: 4, data: px, channels: 4 }], { imageSize: 4, cropPct: 1, inChannels: 1, mean: [0.1], std: [0.2] });
    expect(out.length).toBe(16);
    const luma = (0.299 * 200 + 0.587 * 100 + 0.114 * 50) / 255;
    for (const v of out) expect(v).toBeCloseTo((luma - 0.1) / 0.2, 5);
  });

  test('clear errors', () => {
    const ok = image(4, 4, () => 1);
    expect(() => preprocess([{ ...ok, width: 0, data: new Uint8Array(0) }], cfg)).toThrow(/^image: zero-size image \(0x4\)/);
    expect(() => preprocess([{ ...ok, data: new Uint8Array(4 * 4 * 3) }], cfg)).toThrow(/^image: 4x4 RGBA needs 64 bytes, data has 48/);
    expect(() => preprocess([ok], { ...cfg, inChannels: 2, mean: [0, 0], std: [1, 1] })).toThrow(/^image: .*1 \(grey\) or 3 \(RGB\).*got 2/);
    expect(() => resizeAntialiased(ok, 0, 3)).toThrow(/^image: output size/);
  });
});

describe('fitWithin', () => {
  test('keeps small images, shrinks big ones keeping the aspect ratio', () => {
    expect(fitWithin(100, 50, 10_000)).toEqual({ width: 100, height: 50 });
    const fit = fitWithin(20_000, 10_000, 64 * 1024 * 1024);
    expect(fit.width * fit.height).toBeLessThanOrEqual(64 * 1024 * 1024);
    expect(fit.width / fit.height).toBeCloseTo(2, 3);
    expect(fit.width).toBeGreaterThan(11_000);
    expect(fitWithin(1_000_000, 1, 1000)).toEqual({ width: 1000, height: 1 });
  });
});
