import { describe, expect, test } from 'vitest';
import { crossEntropy } from '../src/kernels/crossEntropy';
import { expectClose } from './helpers/compare';
import { poisoned, read, run, testGpu, upload } from './helpers/gpu';
import { randn, rng, uniform } from './helpers/random';
import { crossEntropyRef } from './reference/ops';
import { TOL } from './tolerances';

const gpu = await testGpu();

async function checkHard(N: number, C: number, smoothing: number, seed: number, logitScale = 3): Promise<void> {
  const logits = randn(N * C, seed, logitScale);
  const next = rng(seed + 1);
  const labels = Float32Array.from({ length: N }, () => Math.floor(next() * C));
  const loss = poisoned(gpu, [N], 'loss');
  const dlogits = poisoned(gpu, [N, C], 'dlogits');
  await run(gpu, crossEntropy(gpu, { logits: upload(gpu, logits, [N, C]), labels: upload(gpu, labels, [N]), smoothing, loss, dlogits }));
  const ref = crossEntropyRef(logits, N, C, { labels, smoothing });
  expectClose(`loss N=${N} C=${C} smoothing=${smoothing}`, await read(gpu, loss), ref.loss, TOL.crossEntropy);
  expectClose(`dlogits N=${N} C=${C} smoothing=${smoothing}`, await read(gpu, dlogits), ref.dlogits, TOL.crossEntropy);
}

describe('cross entropy', () => {
  test('hard labels, with and without label smoothing', async () => {
    await checkHard(1, 2, 0, 1);
    await checkHard(5, 7, 0.1, 2);
    await checkHard(3, 130, 0.1, 3);
  });
  test('ImageNet size: 8 rows of 1000 classes, logits up to about 1e2', async () => {
    await checkHard(8, 1000, 0.1, 4, 30);
  });
  test('soft targets (mixup): rows of a probability distribution', async () => {
    const N = 6;
    const C = 11;
    const logits = randn(N * C, 5, 2);
    const raw = uniform(N * C, 6);
    const soft = raw.map((v, i) => v / raw.slice(Math.floor(i / C) * C, Math.floor(i / C) * C + C).reduce((a, b) => a + b, 0));
    const loss = poisoned(gpu, [N], 'loss');
    const dlogits = poisoned(gpu, [N, C], 'dlogits');
    await run(gpu, crossEntropy(gpu, { logits: upload(gpu, logits, [N, C]), soft: upload(gpu, soft, [N, C]), loss, dlogits }));
    const ref = crossEntropyRef(logits, N, C, { soft });
    expectClose('soft loss', await read(gpu, loss), ref.loss, TOL.crossEntropy);
    expectClose('soft dlogits', await read(gpu, dlogits), ref.dlogits, TOL.crossEntropy);
  });
  test('a label out of range gives a NaN loss for that row only', async () => {
    const loss = poisoned(gpu, [3], 'loss');
    await run(gpu, crossEntropy(gpu, {
      logits: upload(gpu, randn(12, 7), [3, 4]), labels: upload(gpu, Float32Array.from([1, 4, 0]), [3]),
      loss, dlogits: poisoned(gpu, [3, 4]),
    }));
    const got = await read(gpu, loss);
    expect(Number.isFinite(got[0])).toBe(true);
    expect(got[1]).toBeNaN();
    expect(Number.isFinite(got[2])).toBe(true);
  });
  test('rejects giving both or neither kind of target', async () => {
    const logits = upload(gpu, new Float32Array(6), [2, 3]);
    const args = { logits, loss: poisoned(gpu, [2]), dlogits: poisoned(gpu, [2, 3]) };
    await expect(crossEntropy(gpu, args)).rejects.toThrow(/cross entropy: give exactly one of labels/);
    await expect(crossEntropy(gpu, { ...args, labels: upload(gpu, new Float32Array(3), [3]) })).rejects.toThrow(/labels has shape \[3\], expected \[2\]/);
  });
});
