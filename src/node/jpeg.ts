// JPEG decoding without the browser's codecs, for Node: jpeg-js is pure JavaScript (no native
// build, no Node built-ins), so this module also runs in a browser test that compares it with the
// browser's own decoder.
import { decode } from 'jpeg-js';
import { MAX_DECODED_PIXELS } from '../limits';
import type { Pixels } from '../image/preprocess';

/**
 * RGBA pixels of a baseline or progressive JPEG (greyscale, YCbCr, Adobe CMYK). Decoders differ
 * in their IDCT and chroma upsampling, so pixels differ from a browser's by a few levels: see
 * the README for what that does to the model's input.
 */
export function decodeJpeg(bytes: Uint8Array, name: string): Pixels {
  try {
    const image = decode(bytes, {
      useTArray: true,
      formatAsRGBA: true,
      maxResolutionInMP: MAX_DECODED_PIXELS / 1e6,
      maxMemoryUsageInMB: Math.ceil((MAX_DECODED_PIXELS * 4 * 2) / 2 ** 20),
    });
    return { width: image.width, height: image.height, data: image.data, channels: 4 };
  } catch (e) {
    throw new Error(`image: could not decode ${name}: ${e instanceof Error ? e.message : String(e)}`);
  }
}
