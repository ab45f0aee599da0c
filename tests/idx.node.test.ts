// IDX files and the selections training datasets make from them (first N, offset, N per class).
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { parseIdx, selectIdx } from '../src/data/idx';

/** An IDX file of unsigned bytes with the given shape. */
function idx(shape: number[], data: number[]): Uint8Array {
  const out = new Uint8Array(4 + 4 * shape.length + data.length);
  const view = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = shape.length;
  shape.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  out.set(data, 4 + 4 * shape.length);
  return out;
}

describe('parseIdx', () => {
  test('reads shape and data, raw and gzipped (the bundled Fashion-MNIST test labels)', async () => {
    const raw = await parseIdx(idx([2, 3], [1, 2, 3, 4, 5, 6]));
    expect(raw.shape).toEqual([2, 3]);
    expect(Array.from(raw.data)).toEqual([1, 2, 3, 4, 5, 6]);
    const labels = await parseIdx(readFileSync('public/data/fashion-mnist/t10k-labels-idx1-ubyte.gz'));
    expect(labels.shape).toEqual([10000]);
    expect(Array.from(labels.data.subarray(0, 5))).toEqual([9, 2, 1, 1, 6]);
  });

  test('refuses other element types and truncated data by name', async () => {
    const floats = idx([1], [0]);
    floats[2] = 0x0d;
    await expect(parseIdx(floats, 'x.idx')).rejects.toThrow(/x.idx: not an IDX file of unsigned bytes/);
    await expect(parseIdx(idx([2, 3], [1, 2, 3]), 'y.idx')).rejects.toThrow(/y.idx: 3 data bytes for shape \[2, 3\] \(6 expected\)/);
  });
});

describe('selectIdx', () => {
  const labels = Uint8Array.from([0, 1, 0, 2, 1, 0, 2, 2, 1, 0]);

  test('all, a range, and the first N of each class in file order', () => {
    expect(selectIdx(labels, {})).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(selectIdx(labels, { offset: 3, count: 4 })).toEqual([3, 4, 5, 6]);
    expect(selectIdx(labels, { perClass: 2 })).toEqual([0, 1, 2, 3, 4, 6]);
    expect(selectIdx(labels, { offset: 2, perClass: 1 })).toEqual([2, 3, 4]);
    expect(selectIdx(labels, { offset: 8 })).toEqual([8, 9]);
  });

  test('too few images, in range or in a class, are refused by name', () => {
    expect(() => selectIdx(labels, { offset: 6, count: 5 }, 'test split')).toThrow(/test split: images 6 to 11 asked for, the file has 10/);
    expect(() => selectIdx(labels, { offset: 5, perClass: 2 }, 'train split')).toThrow(/train split: class 1 has 1 images from image 5 on, 2 per class asked for/);
    expect(() => selectIdx(labels, { count: -1 })).toThrow(/count must be a non-negative integer/);
  });
});
