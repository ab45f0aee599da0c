// IDX files (MNIST, Fashion-MNIST): a magic number giving the element type and rank, the
// dimensions as big-endian u32, then the data. Gzipped files are inflated first.

export interface IdxArray { shape: number[]; data: Uint8Array }

export async function gunzipIfNeeded(bytes: Uint8Array): Promise<Uint8Array> {
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b) return bytes;
  const stream = new Blob([bytes as BlobPart]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Parses an (optionally gzipped) IDX file of unsigned bytes. */
export async function parseIdx(input: ArrayBuffer | Uint8Array, name = 'IDX file'): Promise<IdxArray> {
  const bytes = await gunzipIfNeeded(input instanceof Uint8Array ? input : new Uint8Array(input));
  if (bytes.length < 4) throw new Error(`${name}: truncated (${bytes.length} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint16(0) !== 0 || bytes[2] !== 0x08) throw new Error(`${name}: not an IDX file of unsigned bytes (magic ${view.getUint32(0).toString(16)})`);
  const rank = bytes[3]!;
  if (bytes.length < 4 + 4 * rank) throw new Error(`${name}: truncated header`);
  const shape = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  const n = shape.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * rank;
  if (bytes.length - start !== n) throw new Error(`${name}: ${bytes.length - start} data bytes for shape [${shape.join(', ')}] (${n} expected)`);
  return { shape, data: bytes.subarray(start) };
}

export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
