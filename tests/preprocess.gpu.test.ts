// Browser checks of decoding and preprocessing (no GPU needed, but the browser's codecs are).
// The golden input was made by an independent numpy pipeline from the same PNGs; matching it to
// float32 precision pins down the resampling conventions (filter, centre alignment, long-side and
// crop rounding). It does not test colour management: chelsea.png's ICC profile is sRGB, so
// Chromium decodes it to the same bytes with or without colorSpaceConversion.
import { describe, expect, test } from 'vitest';
import { decodeImage } from '../src/image/decode';
import { preprocess } from '../src/image/preprocess';
import { PRESETS } from '../src/models/vit/config';

// Vite serves public/ at the site root and every other project file at its own path.
const SAMPLES = '/samples';
const GOLDEN = '/tests/fixtures/deit_tiny_golden.safetensors';

async function fetchBlob(url: string): Promise<Blob> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`fetch ${url}: HTTP ${res.status}`);
  return res.blob();
}

/** One F32 tensor of a safetensors file: u64 LE header length, JSON header, then the data. */
async function goldenTensor(name: string): Promise<{ shape: number[]; data: Float32Array }> {
  const buf = await (await fetchBlob(GOLDEN)).arrayBuffer();
  const headerLen = Number(new DataView(buf).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 8, headerLen))) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const entry = header[name];
  if (!entry || entry.dtype !== 'F32') throw new Error(`golden: no F32 tensor ${name}`);
  const [begin, end] = entry.data_offsets;
  // slice() copies to an aligned buffer: the data section need not start on a 4-byte boundary.
  return { shape: entry.shape, data: new Float32Array(buf.slice(8 + headerLen + begin, 8 + headerLen + end)) };
}

describe('preprocessing matches the golden DeiT input', () => {
  test('chelsea.png and coffee.png -> (2, 3, 224, 224)', async () => {
    const golden = await goldenTensor('input');
    expect(golden.shape).toEqual([2, 3, 224, 224]);
    const images = await Promise.all(['chelsea.png', 'coffee.png'].map(async (f) => decodeImage(await fetchBlob(`${SAMPLES}/${f}`))));
    expect(images.map((p) => [p.width, p.height])).toEqual([[451, 300], [600, 400]]);
    const got = preprocess(images, PRESETS['deit-tiny']);
    expect(got.length).toBe(golden.data.length);
    let maxAbs = 0;
    let sumAbs = 0;
    for (let i = 0; i < got.length; i++) {
      const d = Math.abs(got[i]! - golden.data[i]!);
      maxAbs = Math.max(maxAbs, d);
      sumAbs += d;
    }
    const meanAbs = sumAbs / got.length;
    console.log(`preprocess vs golden input: max abs ${maxAbs.toExponential(2)}, mean abs ${meanAbs.toExponential(2)} (normalised units)`);
    // Measured: max 4.8e-7, mean 6.5e-8 (float32 rounding). A wrong convention costs far more:
    // uint8 rounding between passes ~9e-3 max, rounding the crop offset 80.5 up 1.5 max.
    expect(maxAbs).toBeLessThan(2e-6);
    expect(meanAbs).toBeLessThan(3e-7);
  });
});

describe('decodeImage', () => {
  const png = () => fetchBlob(`${SAMPLES}/chelsea.png`);

  test('a non-image is rejected by its bytes', async () => {
    const text = new File(['hello, not a picture'], 'notes.txt', { type: 'text/plain' });
    await expect(decodeImage(text)).rejects.toThrow('image: notes.txt is not an image (expected PNG, JPEG, WebP, GIF or BMP)');
    await expect(decodeImage(new Blob(['<html></html>'], { type: 'text/html' }))).rejects.toThrow('image: text/html is not an image');
  });

  test('an empty file, a truncated PNG and a mislabelled file give clear errors', async () => {
    await expect(decodeImage(new File([], 'empty.png', { type: 'image/png' }))).rejects.toThrow('image: empty.png is empty');
    const bytes = new Uint8Array(await (await png()).arrayBuffer());
    const truncated = new File([bytes.slice(0, 200)], 'cut.png', { type: 'image/png' });
    await expect(decodeImage(truncated)).rejects.toThrow(/^image: could not decode cut\.png: /);
    const fake = new File(['GARBAGE GARBAGE GARBAGE'], 'fake.jpg', { type: 'image/jpeg' });
    await expect(decodeImage(fake)).rejects.toThrow('image: could not decode fake.jpg: not a valid JPEG file');
  });

  test('ImageData passes through; canvases and bitmaps are read back; zero size is refused', async () => {
    const id = new ImageData(new Uint8ClampedArray([1, 2, 3, 4, 5, 6, 7, 8]), 2, 1);
    const fromData = await decodeImage(id);
    expect([fromData.width, fromData.height, Array.from(fromData.data)]).toEqual([2, 1, [1, 2, 3, 4, 5, 6, 7, 8]]);

    const canvas = new OffscreenCanvas(3, 2);
    const ctx = canvas.getContext('2d')!;
    ctx.fillStyle = 'rgb(10, 20, 30)';
    ctx.fillRect(0, 0, 3, 2);
    const fromCanvas = await decodeImage(canvas);
    expect([fromCanvas.width, fromCanvas.height, Array.from(fromCanvas.data.slice(0, 4))]).toEqual([3, 2, [10, 20, 30, 255]]);
    const fromBitmap = await decodeImage(await createImageBitmap(canvas));
    expect(Array.from(fromBitmap.data.slice(20, 24))).toEqual([10, 20, 30, 255]);

    await expect(decodeImage(new OffscreenCanvas(0, 5))).rejects.toThrow(/^image: .*zero size \(0x5\)/);
  });

  test('images over maxPixels are downscaled keeping the aspect ratio, not rejected', async () => {
    const small = await decodeImage(await png(), { maxPixels: 30_000 });
    expect(small.width * small.height).toBeLessThanOrEqual(30_000);
    expect(small.width / small.height).toBeCloseTo(451 / 300, 1);
    expect(small.data.length).toBe(small.width * small.height * 4);
  });
});
