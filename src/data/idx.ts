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

/** Which images of an IDX file to use: from `offset`, the next `count` (default: the rest), or the first `perClass` of each class. */
export interface IdxSelection {
  offset?: number;
  count?: number;
  perClass?: number;
}

/**
 * Indices of the selected examples, in file order. `perClass` takes the first N of every class
 * (0 .. the largest label) from `offset` on, stopping after `count` images scanned if given.
 */
export function selectIdx(labels: Uint8Array, sel: IdxSelection, name = 'IDX selection'): number[] {
  const offset = sel.offset ?? 0;
  const n = labels.length;
  const count = sel.count ?? n - offset;
  for (const [k, v] of [['offset', offset], ['count', count], ['perClass', sel.perClass ?? 1]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new Error(`${name}: ${k} must be a non-negative integer, got ${v}`);
  }
  if (offset + count > n) throw new Error(`${name}: images ${offset} to ${offset + count} asked for, the file has ${n}`);
  const range = Array.from({ length: count }, (_, i) => offset + i);
  const perClass = sel.perClass;
  if (perClass === undefined) return range;
  const classes = labels.reduce((m, l) => Math.max(m, l), 0) + 1;
  const taken = new Array<number>(classes).fill(0);
  const picked: number[] = [];
  for (const i of range) {
    const l = labels[i]!;
    if (taken[l]! < perClass) {
      taken[l]!++;
      picked.push(i);
    }
  }
  const short = taken.findIndex((t) => t < perClass);
  if (short >= 0) throw new Error(`${name}: class ${short} has ${taken[short]} images from image ${offset} on, ${perClass} per class asked for`);
  return picked;
}

export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

/** An image file and its label file, checked against each other: images (N, H, W), labels (N). */
export interface IdxImages { images: IdxArray; labels: IdxArray }

export async function parseIdxImages(images: ArrayBuffer | Uint8Array, labels: ArrayBuffer | Uint8Array, name: string): Promise<IdxImages> {
  const [im, lb] = await Promise.all([parseIdx(images, `${name} images`), parseIdx(labels, `${name} labels`)]);
  if (im.shape.length !== 3) throw new Error(`${name} images: shape [${im.shape.join(', ')}], expected [count, height, width]`);
  if (lb.shape.length !== 1 || lb.shape[0] !== im.shape[0]) throw new Error(`${name}: ${im.shape[0]} images but labels of shape [${lb.shape.join(', ')}]`);
  return { images: im, labels: lb };
}

/** The Fashion-MNIST test split (10,000 images) from a folder URL, as the demo bundles it. */
export async function fetchFashionMnist(folder: URL): Promise<IdxImages> {
  const [images, labels] = await Promise.all(['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'].map(async (f) => {
    const res = await fetch(new URL(f, folder));
    if (!res.ok) throw new Error(`could not load Fashion-MNIST ${f}: HTTP ${res.status}`);
    return res.arrayBuffer();
  }));
  return parseIdxImages(images!, labels!, 'Fashion-MNIST');
}

/** Image `index` of an (N, H, W) grey IDX array as RGBA bytes, so it takes the same path as photos. */
export function greyToRgba(images: IdxArray, index: number): Uint8ClampedArray<ArrayBuffer> {
  const n = images.shape[1]! * images.shape[2]!;
  const grey = images.data.subarray(index * n, (index + 1) * n);
  const rgba = new Uint8ClampedArray(4 * n);
  for (let i = 0; i < n; i++) rgba.set([grey[i]!, grey[i]!, grey[i]!, 255], 4 * i);
  return rgba;
}
