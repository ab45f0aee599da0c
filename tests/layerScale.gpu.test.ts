// LayerScale's kernels (shaders/layerscale.wgsl) against float64: out = x + gamma * f, and its
// backward df = gamma * dout, dgamma (+)= column sums of dout * f, at DeiT-III's real size
// (B=2, 197 tokens, D=384) and at sizes that are not multiples of the workgroups.
import { describe, expect, test } from 'vitest';
import { scaleAdd, scaleAddBackward } from '../src/kernels/layerScale';
import { expectClose } from './helpers/compare';
import { poisoned, read, run, testGpu, upload } from './helpers/gpu';
import { randn } from './helpers/random';
import { TOL } from './tolerances';

const gpu = await testGpu();

describe('LayerScale: out = x + gamma * f', () => {
  test.each([
    ['DeiT-III-S block, B=2, T=197, D=384', 2 * 197, 384],
    ['odd sizes, rows=7, D=5', 7, 5],
    ['one row wider than a workgroup, D=300', 1, 300],
  ])('%s', async (_, rows, D) => {
    const x = randn(rows * D, 1);
    const f = randn(rows * D, 2);
    const gamma = randn(D, 3, 0.5);
    const out = poisoned(gpu, [rows, D]);
    await run(gpu, scaleAdd(gpu, { x: upload(gpu, x, [rows, D]), f: upload(gpu, f, [rows, D]), gamma: upload(gpu, gamma, [D]), out }));
    expectClose('out', await read(gpu, out), Float64Array.from(x, (v, i) => v + gamma[i % D]! * f[i]!), TOL.elementwise);

    const dout = randn(rows * D, 4);
    const df = poisoned(gpu, [rows, D]);
    // dgamma accumulates (micro-batches add into one gradient arena): start from a known value.
    const start = randn(D, 5);
    const dgamma = upload(gpu, start, [D]);
    await run(gpu, scaleAddBackward(gpu, { dout: upload(gpu, dout, [rows, D]), f: upload(gpu, f, [rows, D]), gamma: upload(gpu, gamma, [D]), df, dgamma }));
    expectClose('df', await read(gpu, df), Float64Array.from(dout, (v, i) => gamma[i % D]! * v), TOL.elementwise);
    const ref = Float64Array.from(start);
    for (let i = 0; i < rows * D; i++) ref[i % D] = ref[i % D]! + dout[i]! * f[i]!;
    expectClose('dgamma', await read(gpu, dgamma), ref, TOL.reduce);
  });

  test('a frozen gamma gets no gradient; shapes are checked', async () => {
    const D = 4;
    const df = poisoned(gpu, [3, D]);
    await run(gpu, scaleAddBackward(gpu, { dout: upload(gpu, randn(3 * D, 1), [3, D]), f: upload(gpu, randn(3 * D, 2), [3, D]), gamma: upload(gpu, randn(D, 3), [D]), df }));
    expect((await read(gpu, df)).every(Number.isFinite)).toBe(true);
    await expect(scaleAdd(gpu, { x: upload(gpu, randn(10, 1), [10]), f: upload(gpu, randn(10, 2), [10]), gamma: upload(gpu, randn(4, 3), [4]), out: poisoned(gpu, [10]) })).rejects.toThrow(/10 elements are not rows of gamma's 4/);
  });
});
