// An image file's width and height as its header declares them, read before any decoding, so a
// decompression bomb (a small file that declares 100000 x 100000 pixels) is refused before the
// decoder allocates for it. Only the header is read; a file whose header cannot be read here goes
// to the decoder, which has the last word on whether the file is valid.

export interface Dimensions { width: number; height: number }

/** How many of a file's first bytes `declaredDimensions` may need (JPEG: markers before the frame header, EXIF included). */
export const HEADER_BYTES = 256 * 1024;

/** The declared size of a PNG, JPEG, GIF, BMP or WebP from its first bytes, or undefined. */
export function declaredDimensions(b: Uint8Array): Dimensions | undefined {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const ascii = (offset: number, s: string) => offset + s.length <= b.length && [...s].every((ch, i) => b[offset + i] === ch.charCodeAt(0));
  // PNG: the 8-byte signature, then IHDR first: length, "IHDR", width and height (u32 big-endian).
  if (ascii(1, 'PNG\r\n\x1a\n') && ascii(12, 'IHDR') && b.length >= 24) return { width: view.getUint32(16), height: view.getUint32(20) };
  if (b[0] === 0xff && b[1] === 0xd8) return jpeg(b, view);
  // GIF: logical screen width and height (u16 little-endian) after the 6-byte signature.
  if ((ascii(0, 'GIF87a') || ascii(0, 'GIF89a')) && b.length >= 10) return { width: view.getUint16(6, true), height: view.getUint16(8, true) };
  // BMP: BITMAPINFOHEADER width and height (i32 little-endian; a negative height is top-down).
  if (ascii(0, 'BM') && b.length >= 26 && view.getUint32(14, true) >= 40) return { width: Math.abs(view.getInt32(18, true)), height: Math.abs(view.getInt32(22, true)) };
  if (ascii(0, 'RIFF') && ascii(8, 'WEBP')) return webp(b, view, ascii);
  return undefined;
}

/** JPEG: walk the marker segments to the first start-of-frame (SOF0..SOF15 but DHT, JPG, DAC). */
function jpeg(b: Uint8Array, view: DataView): Dimensions | undefined {
  let at = 2;
  while (at + 9 <= b.length) {
    if (b[at] !== 0xff) return undefined;
    const marker = b[at + 1]!;
    if (marker === 0xff) { at++; continue; } // fill byte
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) { at += 2; continue; } // no length
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { width: view.getUint16(at + 7), height: view.getUint16(at + 5) };
    }
    if (marker === 0xd9 || marker === 0xda) return undefined; // end of image, or scan data before any frame
    at += 2 + view.getUint16(at + 2);
  }
  return undefined;
}

/** WebP: VP8X states the canvas size; otherwise the lossy (VP8) or lossless (VP8L) frame header does. */
function webp(b: Uint8Array, view: DataView, ascii: (offset: number, s: string) => boolean): Dimensions | undefined {
  const u24 = (o: number) => b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16);
  if (ascii(12, 'VP8X') && b.length >= 30) return { width: u24(24) + 1, height: u24(27) + 1 };
  if (ascii(12, 'VP8 ') && b.length >= 30) return { width: view.getUint16(26, true) & 0x3fff, height: view.getUint16(28, true) & 0x3fff };
  if (ascii(12, 'VP8L') && b.length >= 25) {
    const bits = view.getUint32(21, true);
    return { width: (bits & 0x3fff) + 1, height: ((bits >> 14) & 0x3fff) + 1 };
  }
  return undefined;
}
