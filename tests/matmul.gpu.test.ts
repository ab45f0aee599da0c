import { describe, expect, test } from 'vitest';
import { matmul, type Epilogue, type MatmulKernel } from '../src/kernels/matmul';
import { expectClose } from './helpers/compare';
import { poisoned, read, run, testGpu, upload } from './helpers/gpu';
import { randn } from './helpers/random';
import { geluRef, matmulRef } from './reference/ops';
import { TOL } from './tolerances';

const gpu = await testGpu();
const KERNELS: MatmulKernel[] = ['naive', 'registers', 'tiled'];

interface Case { batch: number; M: number; N: number; K: number; transA?: boolean; transB?: boolean; epilogue?: Epilogue; batchB?: number; accumulate?: boolean }

/** Checks one case against the float64 reference; `kernel` undefined takes the adapter's choice. */
async function check(kernel: MatmulKernel | undefined, s: Case, seed: number): Promise<void> {
  const bA = s.batch;
  const bB = s.batchB ?? s.batch;
  const a = randn(bA * s.M * s.K, seed);
  // B scaled like an initialised weight (std 1/sqrt(K)) so outputs are O(1) as in a real layer:
  // the tolerances assume O(1) sums (see tolerances.ts).
  const b = randn(bB * s.K * s.N, seed + 1, 1 / Math.sqrt(s.K));
  const bias = randn(s.N, seed + 2);
  const prior = randn(s.batch * s.M * s.N, seed + 3);
  const aShape = s.transA ? [bA, s.K, s.M] : [bA, s.M, s.K];
  const bShape = bB === 1 ? (s.transB ? [s.N, s.K] : [s.K, s.N]) : s.transB ? [bB, s.N, s.K] : [bB, s.K, s.N];
  const c = s.accumulate ? upload(gpu, prior, [s.batch, s.M, s.N], 'c') : poisoned(gpu, [s.batch, s.M, s.N], 'c');
  await run(gpu, matmul(gpu, {
    a: upload(gpu, a, aShape, 'a'), b: upload(gpu, b, bShape, 'b'), c,
    bias: s.epilogue && s.epilogue !== 'none' ? upload(gpu, bias, [s.N], 'bias') : undefined,
    transA: s.transA, transB: s.transB, epilogue: s.epilogue, accumulate: s.accumulate, kernel,
  }));
  let ref = matmulRef(a, b, { ...s, batchB: bB });
  if (s.epilogue === 'bias' || s.epilogue === 'bias_gelu') ref = ref.map((v, i) => v + bias[i % s.N]!);
  if (s.epilogue === 'bias_gelu') ref = geluRef(ref);
  if (s.accumulate) ref = ref.map((v, i) => v + prior[i]!);
  expectClose(`${kernel ?? 'default'} ${JSON.stringify(s)}`, await read(gpu, c), ref, TOL.matmul);
}

describe.each(KERNELS)('matmul %s', (kernel) => {
  test('tiny shapes, every transpose combination', async () => {
    let seed = 1;
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        await check(kernel, { batch: 1, M: 1, N: 1, K: 1, transA, transB }, seed++);
        await check(kernel, { batch: 2, M: 3, N: 5, K: 7, transA, transB }, seed++);
      }
    }
  });

  test('sizes that are not multiples of any tile', async () => {
    await check(kernel, { batch: 3, M: 67, N: 33, K: 19 }, 10);
    await check(kernel, { batch: 1, M: 65, N: 129, K: 17, transB: true }, 11);
    await check(kernel, { batch: 2, M: 31, N: 70, K: 66, transA: true }, 12);
  });

  test('epilogues, weight broadcast over the batch, accumulation', async () => {
    await check(kernel, { batch: 2, M: 13, N: 21, K: 9, transB: true, batchB: 1, epilogue: 'bias' }, 20);
    await check(kernel, { batch: 2, M: 13, N: 21, K: 9, transB: true, batchB: 1, epilogue: 'bias_gelu' }, 21);
    await check(kernel, { batch: 2, M: 13, N: 21, K: 9, accumulate: true }, 22);
  });
});

// Register kernels with 16-byte loads: the stored rows of a and b are multiples of 4 long.
describe.each(['registers', 'registers8'] as const)('matmul %s with 16-byte loads', (kernel) => {
  test('every transpose combination, edges past every block', async () => {
    let seed = 40;
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        // K need only be a multiple of 4 where a row of a or b runs along it.
        const K = !transA || transB ? 20 : 18;
        await check(kernel, { batch: 2, M: transA ? 20 : 13, N: transB ? 11 : 12, K, transA, transB }, seed++);
        await check(kernel, { batch: 1, M: 68, N: 72, K: 36, transA, transB, epilogue: 'bias_gelu' }, seed++);
      }
    }
  });
  test('weight broadcast over the batch, accumulation', async () => {
    await check(kernel, { batch: 3, M: 50, N: 64, K: 16, transB: true, batchB: 1, epilogue: 'bias' }, 50);
    await check(kernel, { batch: 2, M: 64, N: 16, K: 100, transA: true, accumulate: true }, 51);
  });
});

describe('matmul registers8', () => {
  test('rows that are not whole vec4s are refused', async () => {
    const t = (shape: number[]) => upload(gpu, new Float32Array(shape.reduce((x, y) => x * y, 1)), shape);
    await expect(matmul(gpu, { a: t([8, 6]), b: t([6, 8]), c: t([8, 8]), kernel: 'registers8' })).rejects.toThrow(/registers8 needs the stored rows of a and b to be multiples of 4 long \(M=8, N=8, K=6\)/);
  });
});

describe('matmul at ViT sizes (B=2, T=197), the kernel the adapter chooses', () => {
  const M = 2 * 197;
  test.each([
    ['qkv D=192', { batch: 1, M, N: 576, K: 192, transB: true, batchB: 1, epilogue: 'bias' as const }],
    ['fc1 D=768 + GELU', { batch: 1, M, N: 3072, K: 768, transB: true, batchB: 1, epilogue: 'bias_gelu' as const }],
    ['fc2 D=768', { batch: 1, M, N: 768, K: 3072, transB: true, batchB: 1, epilogue: 'bias' as const }],
    ['dW of fc1: dY^T X', { batch: 1, M: 3072, N: 768, K: M, transA: true, batchB: 1 }],
  ])('%s', async (_, s) => {
    await check(undefined, s, 30);
  });
});

describe('matmul rejects bad arguments before dispatching', () => {
  const t = (shape: number[]) => upload(gpu, new Float32Array(shape.reduce((x, y) => x * y, 1)), shape);
  test('inner dimension mismatch names both arguments', async () => {
    await expect(matmul(gpu, { a: t([2, 3]), b: t([4, 5]), c: t([2, 5]) })).rejects.toThrow(/matmul: inner dimensions differ: a \[2, 3\] gives K=3, b \[4, 5\] gives K=4/);
  });
  test('output shape mismatch', async () => {
    await expect(matmul(gpu, { a: t([2, 3]), b: t([3, 5]), c: t([2, 4]) })).rejects.toThrow(/b \[3, 5\] has 5 columns but c \[2, 4\] has 4/);
  });
  test('zero-size dimension', async () => {
    const empty = { buffer: t([1]).buffer, offset: 0, shape: [0, 3], label: 'empty' };
    await expect(matmul(gpu, { a: empty, b: t([3, 5]), c: t([2, 5]) })).rejects.toThrow(/a has shape \[0, 3\]: every dimension must be a positive integer/);
  });
  test('a binding over the device limit names the limit', async () => {
    const limit = gpu.device.limits.maxStorageBufferBindingSize;
    const huge = { buffer: t([1]).buffer, offset: 0, shape: [limit / 4 + 1, 1], label: 'huge' };
    await expect(matmul(gpu, { a: huge, b: t([1, 1]), c: t([2, 1]) })).rejects.toThrow(/maxStorageBufferBindingSize/);
  });
  test('missing bias for a bias epilogue', async () => {
    await expect(matmul(gpu, { a: t([2, 3]), b: t([3, 5]), c: t([2, 5]), epilogue: 'bias' })).rejects.toThrow(/epilogue bias needs a bias/);
  });
  test('output overlapping an input', async () => {
    const a = t([4, 4]);
    await expect(matmul(gpu, { a, b: t([4, 4]), c: a })).rejects.toThrow(/output c overlaps a/);
  });
});
