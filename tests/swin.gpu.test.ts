import { describe, expect, test } from 'vitest';
import { attention, attentionBackward } from '../src/kernels/attention';
import {
  patchMerge, patchMergeBackward, relativePositionBias, relativePositionBiasBackward, swinWindowLayout, windowGrid,
  windowPartition, windowReverse, type WindowLayout,
} from '../src/kernels/swin';
import { expectClose } from './helpers/compare';
import { poisoned, read, run, testGpu, upload } from './helpers/gpu';
import { randn } from './helpers/random';
import {
  patchMergeBackwardRef, patchMergeRef, relativePositionBiasBackwardRef, relativePositionBiasRef, swinUnwindowsRef,
  swinWindowsRef, windowAttentionBackwardRef, windowAttentionRef, type SwinLayout,
} from './reference/swin';
import { TOL } from './tolerances';

const gpu = await testGpu();

const refLayout = (l: WindowLayout): SwinLayout => ({ H: l.H, W: l.W, wh: l.window[0], ww: l.window[1], sh: l.shift[0], sw: l.shift[1] });
const describeLayout = (l: WindowLayout) => `${l.H}x${l.W} window ${l.window.join('x')} shift ${l.shift.join('x')}`;

// [what, layout, B, C]. Layouts come from timm's clamp (swinWindowLayout) where they model a block.
const windowCases: [string, WindowLayout, number, number][] = [
  ['shifted, C not a multiple of 4', swinWindowLayout(8, 8, 4, true), 2, 5],
  ['padded (10x9 in windows of 4), unshifted', swinWindowLayout(10, 9, 4, false), 1, 3],
  ['padded and shifted (10x10, window 7, shift 3)', swinWindowLayout(10, 10, 7, true), 2, 6],
  ['clamped on one axis (5x10, window 7 -> 5x7, shift 0x3)', swinWindowLayout(5, 10, 7, true), 1, 4],
  ['clamped to the map (6x6, window 7 -> 6, no shift)', swinWindowLayout(6, 6, 7, true), 2, 7],
  ['small training configuration (14x14, window 7, shift 3)', swinWindowLayout(14, 14, 7, true), 2, 12],
  ['Swin-T stage 1 (56x56, window 7, shift 3, C=96)', swinWindowLayout(56, 56, 7, true), 1, 96],
];

describe('window layout: timm clamping', () => {
  test('window and shift after the clamp', () => {
    expect(swinWindowLayout(56, 56, 7, true)).toEqual({ H: 56, W: 56, window: [7, 7], shift: [3, 3] });
    expect(swinWindowLayout(7, 7, 7, true)).toEqual({ H: 7, W: 7, window: [7, 7], shift: [0, 0] });
    expect(swinWindowLayout(5, 10, 7, true)).toEqual({ H: 5, W: 10, window: [5, 7], shift: [0, 3] });
    expect(swinWindowLayout(10, 10, 7, false).shift).toEqual([0, 0]);
    expect(windowGrid(swinWindowLayout(10, 10, 7, true))).toEqual({ gh: 2, gw: 2, nW: 4, N: 49, planes: 4, tableSize: 169 });
    expect(windowGrid(swinWindowLayout(14, 14, 7, false)).planes).toBe(1);
  });
});

describe('window partition and reverse (roll, pad, partition; reverse, crop, roll back)', () => {
  test.each(windowCases)('%s', async (_, layout, B, C) => {
    const l = refLayout(layout);
    const { nW, N } = windowGrid(layout);
    const what = describeLayout(layout);
    const x = randn(B * l.H * l.W * C, 1);
    const xT = upload(gpu, x, [B, l.H * l.W, C], 'x');
    const windows = poisoned(gpu, [B * nW, N, C], 'windows');
    await run(gpu, windowPartition(gpu, { x: xT, windows, layout }));
    expectClose(`partition ${what}`, await read(gpu, windows), swinWindowsRef(x, B, C, l), TOL.elementwise);

    // Reverse of random windows, padded rows included (they must be dropped): overwrite, then accumulate.
    const win = randn(B * nW * N * C, 2);
    const winT = upload(gpu, win, [B * nW, N, C], 'windows in');
    const out = poisoned(gpu, [B, l.H * l.W, C], 'out');
    await run(gpu, windowReverse(gpu, { windows: winT, x: out, layout }));
    const ref = swinUnwindowsRef(win, B, C, l);
    expectClose(`reverse ${what}`, await read(gpu, out), ref, TOL.elementwise);
    const resid = randn(B * l.H * l.W * C, 3);
    const acc = upload(gpu, resid, [B, l.H * l.W, C], 'residual');
    await run(gpu, windowReverse(gpu, { windows: winT, x: acc, layout, accumulate: true }));
    expectClose(`reverse, accumulated ${what}`, await read(gpu, acc), ref.map((v, i) => v + resid[i]!), TOL.elementwise);
  });

  test('rejects a shift not smaller than the window, and windows of the wrong shape', async () => {
    const x = upload(gpu, new Float32Array(64), [1, 16, 4]);
    await expect(windowPartition(gpu, { x, windows: poisoned(gpu, [4, 4, 4]), layout: { H: 4, W: 4, window: [2, 2], shift: [2, 0] } }))
      .rejects.toThrow(/window partition: window \[2, 2\] with shift \[2, 0\]/);
    await expect(windowPartition(gpu, { x, windows: poisoned(gpu, [4, 4, 3]), layout: { H: 4, W: 4, window: [2, 2], shift: [1, 1] } }))
      .rejects.toThrow(/windows has shape \[4, 4, 3\], expected \[4, 4, 4\]/);
    await expect(windowReverse(gpu, { windows: poisoned(gpu, [4, 4, 4]), x, layout: { H: 4, W: 5, window: [2, 2], shift: [0, 0] } }))
      .rejects.toThrow(/x has shape \[1, 16, 4\], expected \[B, 20, C\]/);
  });
});

describe('relative position bias with the shift mask', () => {
  // [what, layout, heads]
  const cases: [string, WindowLayout, number][] = [
    ['8x8, window 4, shift 2', swinWindowLayout(8, 8, 4, true), 3],
    ['padded and shifted (10x10, window 7)', swinWindowLayout(10, 10, 7, true), 2],
    ['shift on one axis (5x10, window 5x7)', swinWindowLayout(5, 10, 7, true), 2],
    // Not a clamp result: a row shift of 0 with two window rows, where timm's slice [-0:] puts every
    // row in one region (the kernel splits the rows at a window boundary, which masks the same).
    ['shift on columns only with two window rows (8x8, window 4, shift 0x2)', { H: 8, W: 8, window: [4, 4], shift: [0, 2] }, 2],
    ['unshifted: one plane, no mask (14x14, window 7)', swinWindowLayout(14, 14, 7, false), 4],
    ['Swin-T stage 1 (56x56, window 7, shift 3, 3 heads)', swinWindowLayout(56, 56, 7, true), 3],
  ];
  test.each(cases)('forward and backward, %s', async (_, layout, heads) => {
    const l = refLayout(layout);
    const { N, planes, tableSize } = windowGrid(layout);
    const what = describeLayout(layout);
    const table = randn(tableSize * heads, 4, 0.02);
    const bias = poisoned(gpu, [planes, heads, N, N], 'bias');
    await run(gpu, relativePositionBias(gpu, { table: upload(gpu, table, [tableSize, heads], 'table'), bias, layout }));
    expectClose(`bias ${what}`, await read(gpu, bias), relativePositionBiasRef(table, heads, l), TOL.elementwise);

    // Backward from one plane, then from several through the scratch sum, accumulating.
    for (const P of [1, 5]) {
      const dbias = randn(P * heads * N * N, 5 + P);
      const ref = relativePositionBiasBackwardRef(dbias, heads, l.wh, l.ww);
      const dtable = poisoned(gpu, [tableSize, heads], 'dtable');
      const args = { dbias: upload(gpu, dbias, [P, heads, N, N], 'dbias'), window: layout.window, scratch: poisoned(gpu, [heads, N, N], 'scratch') };
      await run(gpu, relativePositionBiasBackward(gpu, { ...args, dtable }));
      expectClose(`dtable from ${P} planes ${what}`, await read(gpu, dtable), ref, TOL.relativeBiasGrad);
      await run(gpu, relativePositionBiasBackward(gpu, { ...args, dtable, accumulate: true }));
      expectClose(`dtable accumulated ${what}`, await read(gpu, dtable), ref.map((v) => 2 * v), TOL.relativeBiasGrad);
    }
  });

  test('rejects a table of the wrong size and several planes without a scratch', async () => {
    const layout = swinWindowLayout(8, 8, 4, true);
    await expect(relativePositionBias(gpu, { table: poisoned(gpu, [48, 2]), bias: poisoned(gpu, [4, 2, 16, 16]), layout }))
      .rejects.toThrow(/table has shape \[48, 2\], expected \[49, heads\]/);
    await expect(relativePositionBiasBackward(gpu, { dbias: poisoned(gpu, [3, 2, 16, 16]), dtable: poisoned(gpu, [49, 2]), window: [4, 4] }))
      .rejects.toThrow(/dbias has 3 planes: a scratch \[2, 16, 16\] takes their sum/);
  });
});

describe('window attention: relative position bias, mask, and the bias gradient from attention backward', () => {
  interface Case { layout: WindowLayout; B: number; heads: number; hd: number; rows?: number }
  /** The whole chain as a block runs it, against windowAttentionRef and its backward. */
  async function check(c: Case, seed: number): Promise<void> {
    const { layout, B, heads, hd } = c;
    const { nW, N, planes, tableSize } = windowGrid(layout);
    const Bw = B * nW;
    const D = heads * hd;
    const what = `${describeLayout(layout)} ${JSON.stringify({ B, heads, hd, rows: c.rows })}`;
    const s = { B, heads, hd, layout: refLayout(layout) };
    const qkv = randn(Bw * N * 3 * D, seed);
    const table = randn(tableSize * heads, seed + 1, 0.5);
    const dout = randn(Bw * N * D, seed + 2);

    const qkvT = upload(gpu, qkv, [Bw, N, 3 * D], 'qkv');
    const bias = poisoned(gpu, [planes, heads, N, N], 'bias');
    const out = poisoned(gpu, [Bw, N, D], 'out');
    const lse = poisoned(gpu, [Bw, heads, N], 'lse');
    await run(gpu, [
      await relativePositionBias(gpu, { table: upload(gpu, table, [tableSize, heads], 'table'), bias, layout }),
      await attention(gpu, { qkv: qkvT, bias, out, lse, heads, rows: c.rows }),
    ]);
    expectClose(`out ${what}`, await read(gpu, out), windowAttentionRef(qkv, table, s).out, TOL.attention);

    const dqkv = poisoned(gpu, [Bw, N, 3 * D], 'dqkv');
    const dscores = poisoned(gpu, [Bw, heads, N, N], 'dscores');
    const dtable = poisoned(gpu, [tableSize, heads], 'dtable');
    await run(gpu, [
      ...(await attentionBackward(gpu, {
        qkv: qkvT, bias, out, lse, heads, rows: c.rows, dout: upload(gpu, dout, [Bw, N, D], 'dout'),
        delta: poisoned(gpu, [Bw, heads, N], 'delta'), dqkv, dscores,
      })),
      ...(await relativePositionBiasBackward(gpu, { dbias: dscores, dtable, window: layout.window, scratch: poisoned(gpu, [heads, N, N], 'scratch') })),
    ]);
    const ref = windowAttentionBackwardRef(qkv, table, dout, s);
    expectClose(`dqkv ${what}`, await read(gpu, dqkv), ref.dqkv, TOL.attention);
    expectClose(`dscores ${what}`, await read(gpu, dscores), ref.dscores, TOL.attention);
    expectClose(`dtable ${what}`, await read(gpu, dtable), ref.dtable, TOL.relativeBiasGrad);
  }

  test('shifted 8x8 map in windows of 4, batch 2, 2 heads', async () => {
    await check({ layout: swinWindowLayout(8, 8, 4, true), B: 2, heads: 2, hd: 8 }, 10);
  });
  test('padded and shifted 10x10 map in windows of 7 (T = 49 leaves partial row blocks), every rows choice', async () => {
    for (const rows of [1, 3, 8]) await check({ layout: swinWindowLayout(10, 10, 7, true), B: 1, heads: 2, hd: 16, rows }, 20 + rows);
  });
  test('unshifted, window clamped to a 6x6 map', async () => {
    await check({ layout: swinWindowLayout(6, 6, 7, false), B: 2, heads: 3, hd: 4 }, 30);
  });
  test('small training configuration: 14x14 map, window 7, shift 3', async () => {
    await check({ layout: swinWindowLayout(14, 14, 7, true), B: 2, heads: 3, hd: 16 }, 40);
  });
  test('Swin-T stage 1: 56x56 map, window 7, shift 3, 3 heads of 32', async () => {
    await check({ layout: swinWindowLayout(56, 56, 7, true), B: 1, heads: 3, hd: 32 }, 50);
  });

  test('rejects dscores of the wrong shape', async () => {
    const t = (shape: number[]) => poisoned(gpu, shape);
    await expect(attentionBackward(gpu, {
      qkv: t([2, 4, 24]), out: t([2, 4, 8]), lse: t([2, 2, 4]), dout: t([2, 4, 8]), delta: t([2, 2, 4]), dqkv: t([2, 4, 24]), heads: 2, dscores: t([1, 2, 4, 4]),
    })).rejects.toThrow(/dscores has shape \[1, 2, 4, 4\], expected \[2, 2, 4, 4\]/);
  });
});

describe('patch merging', () => {
  test.each([
    ['even map, C not a multiple of 4', 2, 6, 6, 5],
    ['odd map (zero padding), batch 2', 2, 7, 5, 3],
    ['small training configuration: 7x7 after stage 1', 2, 7, 7, 12],
    ['Swin-T stage 1 -> 2 (56x56, C=96)', 1, 56, 56, 96],
  ])('%s', async (_, B, H, W, C) => {
    const Ho = Math.ceil(H / 2);
    const Wo = Math.ceil(W / 2);
    const x = randn(B * H * W * C, 60);
    const out = poisoned(gpu, [B, Ho * Wo, 4 * C]);
    await run(gpu, patchMerge(gpu, { x: upload(gpu, x, [B, H * W, C]), out, H, W }));
    expectClose('patch merge', await read(gpu, out), patchMergeRef(x, B, H, W, C), TOL.elementwise);

    const dout = randn(B * Ho * Wo * 4 * C, 61);
    const doutT = upload(gpu, dout, [B, Ho * Wo, 4 * C]);
    const ref = patchMergeBackwardRef(dout, B, H, W, C);
    const dx = poisoned(gpu, [B, H * W, C]);
    await run(gpu, patchMergeBackward(gpu, { dout: doutT, dx, H, W }));
    expectClose('patch merge backward', await read(gpu, dx), ref, TOL.elementwise);
    await run(gpu, patchMergeBackward(gpu, { dout: doutT, dx, H, W, accumulate: true }));
    expectClose('patch merge backward, accumulated', await read(gpu, dx), ref.map((v) => 2 * v), TOL.elementwise);
  });

  test('rejects an output of the wrong shape', async () => {
    await expect(patchMerge(gpu, { x: poisoned(gpu, [1, 35, 3]), out: poisoned(gpu, [1, 9, 12]), H: 7, W: 5 }))
      .rejects.toThrow(/patch merge: out has shape \[1, 9, 12\], expected \[1, 12, 12\]/);
  });
});
