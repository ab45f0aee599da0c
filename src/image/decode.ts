// Decoding images to RGBA pixels with the browser's own codecs. Uses only createImageBitmap and
// OffscreenCanvas, which exist in Workers too, so decoding can run off the main thread.
import { formatCount, MAX_DECODED_PIXELS } from '../limits';
import { declaredDimensions, HEADER_BYTES } from './dimensions';
import { checkPixels, fitWithin, MAX_IMAGE_PIXELS, type Pixels } from './preprocess';

export interface DecodeOptions {
  /** Name for error messages; defaults to a File's name or the Blob's MIME type. */
  name?: string;
  /** Images with more pixels are downscaled (aspect kept) while decoding; default MAX_IMAGE_PIXELS. */
  maxPixels?: number;
}

/** Refuses an image over MAX_DECODED_PIXELS, by its name and size. */
export function checkDecodable(name: string, width: number, height: number): void {
  if (width * height > MAX_DECODED_PIXELS) {
    const side = Math.sqrt(MAX_DECODED_PIXELS);
    throw new Error(`image: ${name} is ${width}x${height} pixels, too large: the limit is ${formatCount(MAX_DECODED_PIXELS)} pixels (${side}x${side})`);
  }
}

export const EXPECTED = 'expected PNG, JPEG, WebP, GIF or BMP';

/** The format named by a file's first bytes, or undefined when none we accept. */
export function sniff(b: Uint8Array): string | undefined {
  const at = (offset: number, ascii: string) => [...ascii].every((ch, i) => b[offset + i] === ch.charCodeAt(0));
  if (b[0] === 0x89 && at(1, 'PNG\r\n\x1a\n')) return 'PNG';
  if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'JPEG';
  if (at(0, 'RIFF') && at(8, 'WEBP')) return 'WebP';
  if (at(0, 'GIF87a') || at(0, 'GIF89a')) return 'GIF';
  if (at(0, 'BM')) return 'BMP';
  return undefined;
}

const CLAIMED: Record<string, string> = {
  'image/png': 'PNG', 'image/jpeg': 'JPEG', 'image/webp': 'WebP', 'image/gif': 'GIF', 'image/bmp': 'BMP',
};

/** ImageData and our own Pixels both carry RGBA bytes already: no canvas round trip needed. */
function isRgbaBuffer(x: unknown): x is { width: number; height: number; data: Uint8ClampedArray | Uint8Array } {
  return typeof x === 'object' && x !== null && 'data' in x && (x.data instanceof Uint8ClampedArray || x.data instanceof Uint8Array);
}

function nameOf(input: ImageBitmapSource, given: string | undefined): string {
  if (given) return given;
  if ('name' in input && typeof input.name === 'string' && input.name) return input.name;
  if (input instanceof Blob) return input.type || 'blob';
  if (typeof HTMLCanvasElement !== 'undefined' && input instanceof HTMLCanvasElement) return 'canvas';
  return input.constructor?.name ?? 'image';
}

/**
 * Decodes a Blob/File (PNG, JPEG, WebP, GIF, BMP; the first frame of an animation), an ImageBitmap,
 * an ImageData or Pixels, a canvas or anything else createImageBitmap accepts into RGBA pixels. Colour
 * profiles are not applied (raw file values, as PIL and numpy read them) and alpha is not
 * premultiplied. Images over maxPixels are downscaled to fitWithin(...) rather than rejected.
 * Errors start with "image: ".
 */
export async function decodeImage(source: ImageBitmapSource | Pixels, options: DecodeOptions = {}): Promise<Pixels> {
  let input: ImageBitmapSource;
  if (isRgbaBuffer(source)) {
    const pixels: Pixels = { width: source.width, height: source.height, data: source.data, channels: 4 };
    checkPixels(pixels);
    if (pixels.width * pixels.height <= (options.maxPixels ?? MAX_IMAGE_PIXELS)) return pixels;
    // Too big: let createImageBitmap downscale it like any other source.
    input = source instanceof ImageData ? source : new ImageData(new Uint8ClampedArray(pixels.data), pixels.width, pixels.height);
  } else {
    input = source;
  }
  const name = nameOf(input, options.name);
  const maxPixels = options.maxPixels ?? MAX_IMAGE_PIXELS;
  if (input instanceof Blob) await checkBlob(input, name);

  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(input, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch (e) {
    // Zero-size canvases and bitmaps are rejected by createImageBitmap itself.
    if ('width' in input && 'height' in input && (input.width === 0 || input.height === 0)) {
      throw new Error(`image: ${name} has zero size (${input.width}x${input.height})`);
    }
    throw new Error(`image: could not decode ${name}: ${e instanceof Error ? e.message : String(e)}`);
  }
  try {
    if (bitmap.width === 0 || bitmap.height === 0) throw new Error(`image: ${name} has zero size (${bitmap.width}x${bitmap.height})`);
    checkDecodable(name, bitmap.width, bitmap.height);
    if (bitmap.width * bitmap.height > maxPixels) {
      const fit = fitWithin(bitmap.width, bitmap.height, maxPixels);
      const small = await createImageBitmap(bitmap, {
        resizeWidth: fit.width, resizeHeight: fit.height, resizeQuality: 'high', premultiplyAlpha: 'none',
      });
      bitmap.close();
      bitmap = small;
    }
    return readBitmap(bitmap);
  } finally {
    bitmap.close();
  }
}

/**
 * Rejects empty files, non-images and images whose header declares more than MAX_DECODED_PIXELS
 * by their bytes, before handing them to the decoder.
 */
async function checkBlob(blob: Blob, name: string): Promise<void> {
  if (blob.size === 0) throw new Error(`image: ${name} is empty (0 bytes)`);
  const head = new Uint8Array(await blob.slice(0, HEADER_BYTES).arrayBuffer());
  if (sniff(head)) {
    const size = declaredDimensions(head);
    if (size) checkDecodable(name, size.width, size.height);
    return;
  }
  const claimed = CLAIMED[blob.type];
  // A file typed as an image whose bytes are not that format is corrupt rather than "not an image".
  if (claimed) throw new Error(`image: could not decode ${name}: not a valid ${claimed} file (bad signature)`);
  throw new Error(`image: ${name} is not an image (${EXPECTED})`);
}

function readBitmap(bitmap: ImageBitmap): Pixels {
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new Error('image: no 2D canvas context available to read pixels');
  ctx.drawImage(bitmap, 0, 0);
  const { data, width, height } = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
  return { width, height, data, channels: 4 };
}
