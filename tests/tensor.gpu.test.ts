// Tensors in arenas: views at aligned offsets, written and read back exactly, several at once.
import { describe, expect, test } from 'vitest';
import { createArena, readTensor, readTensors, writeTensor } from '../src/gpu/tensor';
import { testGpu } from './helpers/gpu';
import { randn } from './helpers/random';

const gpu = await testGpu();

describe('readTensors', () => {
  // Sizes that are not multiples of anything, a single element, and one larger view.
  const spec = { a: [3], b: [1], c: [5, 7], d: [64, 33], e: [2, 2] };
  const arena = createArena(gpu, 'readback test', spec);
  const names = Object.keys(spec) as (keyof typeof spec)[];
  const values = names.map((n, i) => randn(arena.tensors[n].shape.reduce((x, y) => x * y, 1), 40 + i));
  names.forEach((n, i) => writeTensor(gpu, arena.tensors[n], values[i]!));
  // Out of arena order, with a repeat: each result is its own tensor's values.
  const order = [3, 0, 4, 1, 2, 0];

  test('reads every tensor exactly, in the order asked, with one staging buffer', async () => {
    const got = await readTensors(gpu, order.map((i) => arena.tensors[names[i]!]));
    order.forEach((i, k) => expect(got[k], names[i]).toEqual(values[i]));
  });

  test('the same when the staging limit splits them over several buffers (each tensor whole)', async () => {
    // 64 bytes: most tensors get a staging buffer of their own; d (8448 bytes) is over the limit alone.
    const got = await readTensors(gpu, order.map((i) => arena.tensors[names[i]!]), 64);
    order.forEach((i, k) => expect(got[k], names[i]).toEqual(values[i]));
  });

  test('readTensor reads one, and no tensors read nothing', async () => {
    expect(await readTensor(gpu, arena.tensors.c)).toEqual(values[2]);
    expect(await readTensors(gpu, [])).toEqual([]);
  });
});
