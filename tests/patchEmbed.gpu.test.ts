import { describe, expect, test } from 'vitest';
import { patchEmbed, patchEmbedBackward } from '../src/kernels/patchEmbed';
import { expectClose } from './helpers/compare';
import { poisoned, read, run, testGpu, upload } from './helpers/gpu';
import { randn } from './helpers/random';
import { patchEmbedBackwardRef, patchEmbedRef, patchifyRef } from './reference/ops';
import { TOL } from './tolerances';

const gpu = await testGpu();

async function check(B: number, C: number, H: number, W: number, P: number, D: number, seed: number): Promise<void> {
  const nP = (H / P) * (W / P);
  const K = C * P * P;
  const image = randn(B * C * H * W, seed);
  const weight = randn(D * K, seed + 1, 0.05);
  const bias = randn(D, seed + 2);
  const cols = poisoned(gpu, [B, nP, K], 'cols');
  const out = poisoned(gpu, [B, nP, D], 'out');
  await run(gpu, patchEmbed(gpu, {
    image: upload(gpu, image, [B, C, H, W]), weight: upload(gpu, weight, [D, C, P, P]), bias: upload(gpu, bias, [D]), cols, out,
  }));
  const what = `B=${B} C=${C} ${H}x${W} P=${P} D=${D}`;
  expectClose(`patchify ${what}`, await read(gpu, cols), patchifyRef(image, B, C, H, W, P), TOL.elementwise);
  expectClose(`patch embed ${what}`, await read(gpu, out), patchEmbedRef(image, weight, bias, B, C, H, W, P, D), TOL.matmul);

  const dout = randn(B * nP * D, seed + 3);
  const dweight = poisoned(gpu, [D, C, P, P]);
  const dbias = poisoned(gpu, [D]);
  await run(gpu, patchEmbedBackward(gpu, { cols, dout: upload(gpu, dout, [B, nP, D]), dweight, dbias }));
  const ref = patchEmbedBackwardRef(image, dout, B, C, H, W, P, D);
  expectClose(`dweight ${what}`, await read(gpu, dweight), ref.dw, TOL.matmul);
  expectClose(`dbias ${what}`, await read(gpu, dbias), ref.dbias, TOL.reduce);
}

describe('patch embedding (conv with kernel = stride = patch)', () => {
  test('tiny, 1 channel (medical), non-square image', async () => {
    await check(2, 1, 8, 12, 4, 5, 1);
  });
  test('5 input channels, patch 7', async () => {
    await check(1, 5, 14, 21, 7, 9, 2);
  });
  test('ViT-Ti/16 at 224: B=2, 3x224x224, D=192', async () => {
    await check(2, 3, 224, 224, 16, 192, 3);
  });
  test('rejects an image that is not whole patches and a channel mismatch', async () => {
    const w = upload(gpu, new Float32Array(2 * 3 * 4 * 4), [2, 3, 4, 4]);
    const b = upload(gpu, new Float32Array(2), [2]);
    const args = { weight: w, bias: b, cols: poisoned(gpu, [1, 4, 48]), out: poisoned(gpu, [1, 4, 2]) };
    await expect(patchEmbed(gpu, { ...args, image: upload(gpu, new Float32Array(3 * 8 * 9), [1, 3, 8, 9]) })).rejects.toThrow(/patch embed: image 8x9 is not a whole number of 4x4 patches/);
    await expect(patchEmbed(gpu, { ...args, image: upload(gpu, new Float32Array(8 * 8), [1, 1, 8, 8]) })).rejects.toThrow(/image has 1 channels but weight expects 3/);
  });
});
