import { describe, expect, test } from 'vitest';
import { gelu, geluBackward } from '../src/kernels/gelu';
import { expectClose } from './helpers/compare';
import { poisoned, read, run, testGpu, upload } from './helpers/gpu';
import { randn } from './helpers/random';
import { geluBackwardRef, geluRef } from './reference/ops';
import { TOL } from './tolerances';

const gpu = await testGpu();

async function check(x: Float32Array, seed: number): Promise<void> {
  const n = x.length;
  const dy = randn(n, seed);
  const xT = upload(gpu, x, [n], 'x');
  const y = poisoned(gpu, [n], 'y');
  const dx = poisoned(gpu, [n], 'dx');
  await run(gpu, Promise.all([gelu(gpu, { x: xT, y }), geluBackward(gpu, { x: xT, dy: upload(gpu, dy, [n], 'dy'), dx })]));
  expectClose(`gelu n=${n}`, await read(gpu, y), geluRef(x), TOL.gelu);
  expectClose(`gelu backward n=${n}`, await read(gpu, dx), geluBackwardRef(x, dy), TOL.gelu);
}

describe('gelu (exact erf form)', () => {
  test('a sweep over [-10, 10], including the far negative tail where 1 + erf cancels', async () => {
    await check(Float32Array.from({ length: 2001 }, (_, i) => -10 + i * 0.01), 1);
  });
  test('random inputs at the size of a ViT-B MLP activation (B=2, T=197, 3072)', async () => {
    await check(randn(2 * 197 * 3072, 2, 3), 3);
  });
  test('sizes that are not multiples of the workgroup', async () => {
    await check(randn(1, 4), 5);
    await check(randn(257, 6), 7);
  });
  test('rejects mismatched sizes', async () => {
    await expect(gelu(gpu, { x: upload(gpu, new Float32Array(4), [4]), y: poisoned(gpu, [5]) })).rejects.toThrow(/gelu: y has 5 elements \[5\], expected 4/);
  });
});
