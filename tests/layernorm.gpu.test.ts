import { describe, expect, test } from 'vitest';
import { layerNorm, layerNormBackward, type LayerNormKernel } from '../src/kernels/layernorm';
import { expectClose } from './helpers/compare';
import { poisoned, read, run, testGpu, upload } from './helpers/gpu';
import { randn } from './helpers/random';
import { layerNormBackwardRef, layerNormRef } from './reference/ops';
import { TOL } from './tolerances';

const gpu = await testGpu();

async function check(rows: number, D: number, seed: number, opts: { mean?: number; eps?: number; accumulate?: boolean } = {}): Promise<void> {
  for (const kernel of ['workgroup', 'rows'] as const) await checkKernel(kernel, rows, D, seed, opts);
}

async function checkKernel(kernel: LayerNormKernel, rows: number, D: number, seed: number, opts: { mean?: number; eps?: number; accumulate?: boolean }): Promise<void> {
  const eps = opts.eps ?? 1e-6;
  const x = randn(rows * D, seed, 1, opts.mean ?? 0);
  const gamma = randn(D, seed + 1, 0.5, 1);
  const beta = randn(D, seed + 2, 0.1);
  const dy = randn(rows * D, seed + 3);
  const what = `${kernel} rows=${rows} D=${D} ${JSON.stringify(opts)}`;
  const xT = upload(gpu, x, [rows, D], 'x');
  const gammaT = upload(gpu, gamma, [D], 'gamma');
  const y = poisoned(gpu, [rows, D], 'y');
  const stats = poisoned(gpu, [rows, 2], 'stats');
  await run(gpu, layerNorm(gpu, { x: xT, gamma: gammaT, beta: upload(gpu, beta, [D], 'beta'), y, stats, eps, kernel }));
  expectClose(`y ${what}`, await read(gpu, y), layerNormRef(x, gamma, beta, rows, D, eps).y, TOL.layernorm);

  const ref = layerNormBackwardRef(x, gamma, dy, rows, D, eps);
  const prior = opts.accumulate ? { dx: randn(rows * D, seed + 4), dg: randn(D, seed + 5), db: randn(D, seed + 6) } : undefined;
  const dx = prior ? upload(gpu, prior.dx, [rows, D]) : poisoned(gpu, [rows, D], 'dx');
  const dgamma = prior ? upload(gpu, prior.dg, [D]) : poisoned(gpu, [D], 'dgamma');
  const dbeta = prior ? upload(gpu, prior.db, [D]) : poisoned(gpu, [D], 'dbeta');
  await run(gpu, layerNormBackward(gpu, { x: xT, gamma: gammaT, stats, dy: upload(gpu, dy, [rows, D], 'dy'), dx, dgamma, dbeta, eps, accumulate: opts.accumulate, kernel }));
  const plus = (a: Float64Array, b?: Float32Array) => (b ? a.map((v, i) => v + b[i]!) : a);
  expectClose(`dx ${what}`, await read(gpu, dx), plus(ref.dx, prior?.dx), TOL.layernorm);
  expectClose(`dgamma ${what}`, await read(gpu, dgamma), plus(ref.dgamma, prior?.dg), TOL.reduce);
  expectClose(`dbeta ${what}`, await read(gpu, dbeta), plus(ref.dbeta, prior?.db), TOL.reduce);
}

describe('layernorm', () => {
  test('tiny shapes', async () => {
    await check(1, 2, 1);
    await check(3, 5, 2);
  });
  test('widths that are not multiples of the workgroup', async () => {
    await check(7, 65, 3);
    await check(5, 130, 4, { eps: 1e-5 });
  });
  test('accumulating gradients', async () => {
    await check(4, 33, 5, { accumulate: true });
  });
  test('inputs around 1e4 with unit spread (a one-pass variance would lose every digit)', async () => {
    await check(6, 768, 6, { mean: 1e4 });
  });
  test('ViT sizes: B=2, T=197, D=192 and 768', async () => {
    await check(2 * 197, 192, 7);
    await check(2 * 197, 768, 8, { eps: 1e-12 });
  });
  test('rejects a non-positive eps and mismatched shapes', async () => {
    const x = upload(gpu, new Float32Array(6), [2, 3]);
    const v = upload(gpu, new Float32Array(3), [3]);
    await expect(layerNorm(gpu, { x, gamma: v, beta: v, y: poisoned(gpu, [2, 3]), stats: poisoned(gpu, [2, 2]), eps: 0 })).rejects.toThrow(/layernorm: eps must be positive/);
    await expect(layerNorm(gpu, { x, gamma: upload(gpu, new Float32Array(4), [4]), beta: v, y: poisoned(gpu, [2, 3]), stats: poisoned(gpu, [2, 2]), eps: 1e-6 })).rejects.toThrow(/gamma has shape \[4\], expected \[3\]/);
  });
});
