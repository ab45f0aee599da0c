import { describe, expect, test } from 'vitest';
import { attention, attentionBackward } from '../src/kernels/attention';
import { expectClose } from './helpers/compare';
import { poisoned, read, run, testGpu, upload } from './helpers/gpu';
import { randn } from './helpers/random';
import { attentionBackwardRef, attentionRef, type AttentionShape } from './reference/ops';
import { TOL } from './tolerances';

const gpu = await testGpu();

interface Case { B: number; T: number; H: number; hd: number; bias?: { nb: number; nh: number }; qkScale?: number; rows?: number }

/** Runs forward (fused and naive, with probabilities) and backward on one seeded case. */
async function check(c: Case, seed: number, backward = true): Promise<void> {
  const D = c.H * c.hd;
  const qkv = randn(c.B * c.T * 3 * D, seed);
  if (c.qkScale) {
    // Scale q and k so that scores reach about +-1e3: a softmax without the max subtraction overflows.
    for (let i = 0; i < qkv.length; i++) if (i % (3 * D) < 2 * D) qkv[i]! *= c.qkScale;
  }
  const biasData = c.bias ? randn(c.bias.nb * c.bias.nh * c.T * c.T, seed + 1) : undefined;
  const shape: AttentionShape = { B: c.B, T: c.T, H: c.H, hd: c.hd, scale: 1 / Math.sqrt(c.hd), ...(c.bias && { bias: { data: biasData!, ...c.bias } }) };
  const ref = attentionRef(qkv, shape);
  const what = JSON.stringify(c);

  const qkvT = upload(gpu, qkv, [c.B, c.T, 3 * D], 'qkv');
  const bias = c.bias ? upload(gpu, biasData!, [c.bias.nb, c.bias.nh, c.T, c.T], 'bias') : undefined;
  for (const kernel of ['fused', 'naive'] as const) {
    const out = poisoned(gpu, [c.B, c.T, D], 'out');
    const lse = poisoned(gpu, [c.B, c.H, c.T], 'lse');
    const probs = poisoned(gpu, [c.B, c.H, c.T, c.T], 'probs');
    await run(gpu, attention(gpu, { qkv: qkvT, out, lse, probs, bias, heads: c.H, kernel, rows: c.rows }));
    expectClose(`${kernel} out ${what}`, await read(gpu, out), ref.out, TOL.attention);
    expectClose(`${kernel} lse ${what}`, await read(gpu, lse), ref.lse, TOL.attention);
    expectClose(`${kernel} probs ${what}`, await read(gpu, probs), ref.probs, TOL.attentionProbs);
  }
  if (!backward) return;
  // Backward from the GPU's own forward outputs, as training runs it.
  const out = poisoned(gpu, [c.B, c.T, D], 'out');
  const lse = poisoned(gpu, [c.B, c.H, c.T], 'lse');
  await run(gpu, attention(gpu, { qkv: qkvT, out, lse, bias, heads: c.H, rows: c.rows }));
  const dout = randn(c.B * c.T * D, seed + 2);
  const dqkv = poisoned(gpu, [c.B, c.T, 3 * D], 'dqkv');
  const delta = poisoned(gpu, [c.B, c.H, c.T], 'delta');
  await run(gpu, attentionBackward(gpu, { qkv: qkvT, out, lse, bias, heads: c.H, rows: c.rows, dout: upload(gpu, dout, [c.B, c.T, D], 'dout'), delta, dqkv }));
  expectClose(`dqkv ${what}`, await read(gpu, dqkv), attentionBackwardRef(qkv, dout, shape), TOL.attention);
}

describe('attention', () => {
  test('tiny shapes', async () => {
    await check({ B: 1, T: 1, H: 1, hd: 4 }, 1);
    await check({ B: 2, T: 3, H: 2, hd: 8 }, 2);
  });
  test('sequence lengths that are not multiples of the workgroup or the 4-key block', async () => {
    await check({ B: 2, T: 33, H: 3, hd: 16 }, 3);
    await check({ B: 1, T: 70, H: 2, hd: 12 }, 4);
  });
  test('additive bias broadcast over batch and heads (relative position bias, window masks)', async () => {
    await check({ B: 4, T: 9, H: 2, hd: 8, bias: { nb: 1, nh: 2 } }, 5);
    await check({ B: 4, T: 9, H: 2, hd: 8, bias: { nb: 2, nh: 1 } }, 6);
  });
  test('every number of rows per invocation, with rows past the end of the sequence', async () => {
    // T = 33 leaves a partial block for 2 to 8 rows; the bias checks that each row reads its own.
    for (const rows of [1, 2, 3, 8]) await check({ B: 2, T: 33, H: 2, hd: 16, bias: { nb: 2, nh: 2 }, rows }, 10 + rows);
    for (const rows of [1, 8]) await check({ B: 1, T: 21, H: 1, hd: 64, rows }, 20 + rows);
    await check({ B: 1, T: 13, H: 1, hd: 128, rows: 4 }, 30);
  });
  test('scores around 1e3 stay finite and exact', async () => {
    await check({ B: 1, T: 50, H: 2, hd: 16, qkScale: 12 }, 7);
  });
  test('ViT-Ti size: B=2, T=197, 3 heads of 64', async () => {
    await check({ B: 2, T: 197, H: 3, hd: 64 }, 8);
  });
  test('ViT-B size: B=2, T=197, 12 heads of 64', async () => {
    await check({ B: 2, T: 197, H: 12, hd: 64 }, 9);
  });
});

describe('attention rejects bad arguments', () => {
  const t = (shape: number[]) => upload(gpu, new Float32Array(shape.reduce((x, y) => x * y, 1)), shape);
  test('heads that do not divide the width', async () => {
    await expect(attention(gpu, { qkv: t([1, 4, 24]), out: t([1, 4, 8]), lse: t([1, 3, 4]), heads: 3 })).rejects.toThrow(/attention: heads=3 does not divide the model dimension 8/);
  });
  test('head dimension beyond the kernel limit', async () => {
    await expect(attention(gpu, { qkv: t([1, 2, 3 * 256]), out: t([1, 2, 256]), lse: t([1, 1, 2]), heads: 1 })).rejects.toThrow(/head dimension 256 must be a multiple of 4 and at most 128/);
  });
  test('wrong output shape', async () => {
    await expect(attention(gpu, { qkv: t([1, 4, 24]), out: t([1, 4, 9]), lse: t([1, 2, 4]), heads: 2 })).rejects.toThrow(/out has shape \[1, 4, 9\], expected \[1, 4, 8\]/);
  });
  test('more rows per invocation than the shader holds', async () => {
    await expect(attention(gpu, { qkv: t([1, 4, 3 * 64]), out: t([1, 4, 64]), lse: t([1, 1, 4]), heads: 1, rows: 9 })).rejects.toThrow(/rows=9 per invocation must be an integer from 1 to 8 for head dimension 64/);
  });
  test('bias of the wrong size', async () => {
    await expect(attention(gpu, { qkv: t([2, 4, 24]), out: t([2, 4, 8]), lse: t([2, 2, 4]), heads: 2, bias: t([3, 1, 4, 4]) })).rejects.toThrow(/bias has shape \[3, 1, 4, 4\]/);
  });
});
