// Image files to RGBA pixels in Node, for the same timm preprocessing as in the browser. PNG
// (pngjs) is lossless, so the pixels, and the model's input, are the browser's exactly; JPEG
// (jpeg-js) differs from the browser's decoder by a few levels (see jpeg.ts). Both libraries are
// pure JavaScript with no dependencies and no native build.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { PNG } from 'pngjs';
import { checkDecodable, EXPECTED, sniff } from '../image/decode';
import { declaredDimensions, HEADER_BYTES } from '../image/dimensions';
import type { Pixels } from '../image/preprocess';
import { decodeJpeg } from './jpeg';

/**
 * Decodes PNG or JPEG bytes to RGBA pixels (16-bit PNGs are scaled to 8 bits; colour profiles
 * and gamma are not applied, as in the browser's decode with colorSpaceConversion 'none').
 * Errors start with "image: " and name the image.
 */
export function decodeImageBytes(bytes: Uint8Array, name = 'image'): Pixels {
  if (bytes.length === 0) throw new Error(`image: ${name} is empty (0 bytes)`);
  const format = sniff(bytes.subarray(0, 16));
  if (!format) throw new Error(`image: ${name} is not an image (${EXPECTED})`);
  if (format !== 'PNG' && format !== 'JPEG') {
    throw new Error(`image: ${name} is ${format}; in Node only PNG and JPEG are decoded: convert it, or decode it yourself and pass the pixels`);
  }
  const size = declaredDimensions(bytes.subarray(0, HEADER_BYTES));
  if (size) checkDecodable(name, size.width, size.height);
  if (format === 'JPEG') return decodeJpeg(bytes, name);
  let png: PNG;
  try {
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (e) {
    throw new Error(`image: could not decode ${name}: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (png.width === 0 || png.height === 0) throw new Error(`image: ${name} has zero size (${png.width}x${png.height})`);
  const data = new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength);
  return { width: png.width, height: png.height, data, channels: 4 };
}

/** Reads and decodes a PNG or JPEG file. */
export async function readImage(path: string): Promise<Pixels> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new Error(`image: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  return decodeImageBytes(bytes, basename(path));
}
