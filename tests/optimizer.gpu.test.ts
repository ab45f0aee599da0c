import { describe, expect, test } from 'vitest';
import { adamw, gradNorm, GRAD_NORM_PARTIALS, type AdamWHyper } from '../src/kernels/optimizer';
import { expectClose } from './helpers/compare';
import { poisoned, read, run, testGpu, upload } from './helpers/gpu';
import { randn, uniform } from './helpers/random';
import { adamwRef, sumSquaresRef } from './reference/ops';
import { TOL } from './tolerances';

const gpu = await testGpu();
const HYPER: AdamWHyper = { lr: 3e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05 };

async function norm(g: Float32Array) {
  const sumsq = poisoned(gpu, [1], 'sumsq');
  await run(gpu, gradNorm(gpu, { grad: upload(gpu, g, [g.length], 'grad'), partials: poisoned(gpu, [GRAD_NORM_PARTIALS]), sumsq }));
  return sumsq;
}

describe('global gradient norm', () => {
  test.each([1, 255, 256 * 256 + 3, 5_717_416])('sum of squares of %i values', async (n) => {
    const g = randn(n, n);
    expectClose(`sumsq n=${n}`, await read(gpu, await norm(g)), [sumSquaresRef(g)], TOL.gradNorm);
  });
});

describe('adamw', () => {
  async function step(n: number, seed: number, hyper: AdamWHyper, stepNo: number, grads?: Float32Array) {
    const p = randn(n, seed);
    const g = grads ?? randn(n, seed + 1, 0.1);
    const m = randn(n, seed + 2, 0.01);
    const v = uniform(n, seed + 3, 0, 1e-3);
    const tensors = { param: upload(gpu, p, [n]), grad: upload(gpu, g, [n]), m: upload(gpu, m, [n]), v: upload(gpu, v, [n]) };
    const sumsq = hyper.maxNorm !== undefined ? await norm(g) : undefined;
    await run(gpu, adamw(gpu, { ...tensors, sumsq, hyper, step: stepNo }));
    return { p, g, m, v, got: { p: await read(gpu, tensors.param), m: await read(gpu, tensors.m), v: await read(gpu, tensors.v) } };
  }

  test('one step with weight decay, then without, at steps 1 and 1000', async () => {
    for (const [hyper, stepNo] of [[HYPER, 1], [{ ...HYPER, weightDecay: 0 }, 1000]] as const) {
      const { p, g, m, v, got } = await step(1001, stepNo, hyper, stepNo);
      const ref = adamwRef(p, g, m, v, { ...hyper, step: stepNo, gradScale: 1 });
      expectClose('param', got.p, ref.p, TOL.adamw);
      expectClose('m', got.m, ref.m, TOL.adamw);
      expectClose('v', got.v, ref.v, TOL.adamw);
    }
  });

  test('gradients clipped to a global norm of 1', async () => {
    const g = randn(4097, 11, 1);
    const { p, m, v, got } = await step(4097, 10, { ...HYPER, maxNorm: 1 }, 3, g);
    const scale = Math.min(1, 1 / (Math.sqrt(sumSquaresRef(g)) + 1e-6));
    expect(scale).toBeLessThan(0.1);
    const ref = adamwRef(p, g, m, v, { ...HYPER, step: 3, gradScale: scale });
    expectClose('clipped param', got.p, ref.p, TOL.adamw);
    expectClose('clipped v', got.v, ref.v, TOL.adamw);
  });

  test('a non-finite gradient anywhere skips the whole update', async () => {
    const g = randn(300, 12);
    g[123] = Number.POSITIVE_INFINITY;
    const { p, m, v, got } = await step(300, 13, { ...HYPER, maxNorm: 1 }, 1, g);
    expect(Array.from(got.p)).toEqual(Array.from(p));
    expect(Array.from(got.m)).toEqual(Array.from(m));
    expect(Array.from(got.v)).toEqual(Array.from(v));
  });

  test('rejects bad hyperparameters and clipping without a norm', async () => {
    const t = upload(gpu, new Float32Array(4), [4]);
    const args = { param: t, grad: upload(gpu, new Float32Array(4), [4]), m: upload(gpu, new Float32Array(4), [4]), v: upload(gpu, new Float32Array(4), [4]), step: 1 };
    await expect(adamw(gpu, { ...args, hyper: { ...HYPER, beta2: 1 } })).rejects.toThrow(/adamw: hyperparameters out of range/);
    await expect(adamw(gpu, { ...args, hyper: { ...HYPER, maxNorm: 1 } })).rejects.toThrow(/maxNorm needs sumsq/);
    await expect(adamw(gpu, { ...args, hyper: HYPER, step: 0 })).rejects.toThrow(/step must be an integer >= 1/);
  });
});
