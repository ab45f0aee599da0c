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

  /** The sizes of the staging buffers `read` creates. */
  async function stagingSizes(read: () => Promise<Float32Array[]>): Promise<{ got: Float32Array[]; sizes: number[] }> {
    const create = gpu.device.createBuffer.bind(gpu.device);
    const sizes: number[] = [];
    gpu.device.createBuffer = (d: GPUBufferDescriptor) => {
      if (d.usage & GPUBufferUsage.MAP_READ) sizes.push(d.size);
      return create(d);
    };
    try {
      return { got: await read(), sizes };
    } finally {
      gpu.device.createBuffer = create;
    }
  }

  test('reads every tensor exactly, in the order asked, through one staging buffer', async () => {
    const { got, sizes } = await stagingSizes(() => readTensors(gpu, order.map((i) => arena.tensors[names[i]!])));
    order.forEach((i, k) => expect(got[k], names[i]).toEqual(values[i]));
    // d, a, e, b, c, a back to back: 2112 + 3 + 4 + 1 + 35 + 3 floats.
    expect(sizes).toEqual([(64 * 33 + 3 + 4 + 1 + 35 + 3) * 4]);
  });

  test('the same when the staging limit splits them over several buffers (each tensor whole)', async () => {
    // 64 bytes: a buffer holds tensors up to 64 bytes together; d (8448 bytes) gets one of its own.
    const { got, sizes } = await stagingSizes(() => readTensors(gpu, order.map((i) => arena.tensors[names[i]!]), 64));
    order.forEach((i, k) => expect(got[k], names[i]).toEqual(values[i]));
    // In order: d | a, e, b (12 + 16 + 4 bytes) | c (140) | a (12).
    expect(sizes).toEqual([8448, 32, 140, 12]);
  });

  test('readTensor reads one, and no tensors read nothing', async () => {
    expect(await readTensor(gpu, arena.tensors.c)).toEqual(values[2]);
    expect(await readTensors(gpu, [])).toEqual([]);
  });
});
