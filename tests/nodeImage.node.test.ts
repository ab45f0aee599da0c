// Image files in Node (src/node/image.ts): PNGs decode to exactly the browser's model input, which
// tests/preprocess.gpu.test.ts checks against the same golden tensor with the same bounds.
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { preprocess } from '../src/image/preprocess';
import { PRESETS } from '../src/models/vit/config';
import { decodeImageBytes, readImage } from '../src/node/image';
import { GOLDEN_PATH, readSafetensors, SAMPLES_DIR } from './helpers/files';

describe('Node decoding then the browser preprocessing', () => {
  test('chelsea.png and coffee.png -> the golden input (2, 3, 224, 224)', async () => {
    const golden = readSafetensors(GOLDEN_PATH).get('input');
    const images = await Promise.all(['chelsea.png', 'coffee.png'].map((f) => readImage(`${SAMPLES_DIR}/${f}`)));
    expect(images.map((p) => [p.width, p.height])).toEqual([[451, 300], [600, 400]]);
    const got = preprocess(images, PRESETS['deit-tiny']);
    expect(got.length).toBe(golden.length);
    let maxAbs = 0;
    let sumAbs = 0;
    for (let i = 0; i < got.length; i++) {
      const d = Math.abs(got[i]! - golden[i]!);
      maxAbs = Math.max(maxAbs, d);
      sumAbs += d;
    }
    console.log(`Node preprocess vs golden input: max abs ${maxAbs.toExponential(2)}, mean abs ${(sumAbs / got.length).toExponential(2)}`);
    // The browser's bounds (measured there: max 4.8e-7, mean 6.5e-8); one pixel value off by one
    // level would cost 1 / (255 * 0.225) = 1.7e-2 before resizing.
    expect(maxAbs).toBeLessThan(2e-6);
    expect(sumAbs / got.length).toBeLessThan(3e-7);
  });

  test('JPEGs decode to RGBA of their declared size', async () => {
    const rocket = await readImage(`${SAMPLES_DIR}/rocket.jpg`);
    expect(rocket.data.length).toBe(rocket.width * rocket.height * 4);
    expect(rocket.width).toBeGreaterThan(0);
  });

  test('bad files give one clear "image: " error each', async () => {
    const png = readFileSync(`${SAMPLES_DIR}/chelsea.png`);
    expect(() => decodeImageBytes(new Uint8Array(0), 'empty.png')).toThrow('image: empty.png is empty (0 bytes)');
    expect(() => decodeImageBytes(new TextEncoder().encode('hello, not a picture'), 'notes.txt')).toThrow('image: notes.txt is not an image (expected PNG, JPEG, WebP, GIF or BMP)');
    expect(() => decodeImageBytes(png.subarray(0, 200), 'cut.png')).toThrow(/^image: could not decode cut\.png: /);
    const jpeg = readFileSync(`${SAMPLES_DIR}/rocket.jpg`);
    expect(() => decodeImageBytes(jpeg.subarray(0, 300), 'cut.jpg')).toThrow(/^image: could not decode cut\.jpg: /);
    expect(() => decodeImageBytes(new TextEncoder().encode('RIFF\0\0\0\0WEBPVP8 '), 'a.webp')).toThrow('image: a.webp is WebP; in Node only PNG and JPEG are decoded');
    await expect(readImage(`${SAMPLES_DIR}/missing.png`)).rejects.toThrow(/^image: cannot read .*missing\.png: ENOENT$/);
  });
});
