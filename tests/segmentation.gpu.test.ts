// The dense head on the GPU against its float64 reference (tests/reference/segmentation.ts, in the
// seed's order: upsample, then the MLP on every pixel): the bilinear upsampling and its backward,
// the per-pixel losses, and the whole head's logits, loss and every gradient, d(tokens) included.
import { describe, expect, test } from 'vitest';
import { createArena, readTensor, readTensors, writeTensor } from '../src/gpu/tensor';
import { segHeadForward } from '../src/graph/layers/segHead';
import { PlanBuilder } from '../src/graph/plan';
import { initSegHead, planSegmentation, SEG_HEAD, SegHead, segHeadWidths, type SegHeadConfig } from '../src/graph/segment';
import { pixelLoss, upsampleBilinear, upsampleBilinearBackward } from '../src/kernels/segmentation';
import { submit } from '../src/gpu/dispatch';
import { expectClose, relL2 } from './helpers/compare';
import { poisoned, read, run, testGpu, upload } from './helpers/gpu';
import { randn, uniform } from './helpers/random';
import { pixelLossRef, segHeadRef, upsampleBilinearBackwardRef, upsampleBilinearRef, type GridShape } from './reference/segmentation';
import { GRAD_REL_L2, TOL } from './tolerances';

const gpu = await testGpu();

describe('bilinear upsampling', () => {
  for (const s of [
    { B: 2, prefix: 1, h: 7, w: 7, Ho: 28, Wo: 28, C: 5 },
    { B: 1, prefix: 2, h: 3, w: 5, Ho: 7, Wo: 4, C: 3 },
    { B: 1, prefix: 0, h: 1, w: 1, Ho: 3, Wo: 2, C: 2 },
  ] satisfies GridShape[]) {
    test(`${s.h}x${s.w} to ${s.Ho}x${s.Wo}, ${s.prefix} prefix tokens, forward and backward`, async () => {
      const T = s.prefix + s.h * s.w;
      const x = randn(s.B * T * s.C, 1);
      const dout = randn(s.B * s.Ho * s.Wo * s.C, 2);
      const out = poisoned(gpu, [s.B, s.Ho * s.Wo, s.C]);
      const dx = poisoned(gpu, [s.B, T, s.C]);
      const shape = { grid: [s.h, s.w] as const, size: [s.Ho, s.Wo] as const, prefix: s.prefix };
      await run(gpu, Promise.all([
        upsampleBilinear(gpu, { x: upload(gpu, x, [s.B, T, s.C]), out, ...shape }),
        upsampleBilinearBackward(gpu, { dout: upload(gpu, dout, [s.B, s.Ho * s.Wo, s.C]), dx, ...shape }),
      ]));
      expectClose('upsample', await read(gpu, out), upsampleBilinearRef(x, s), TOL.elementwise);
      expectClose('upsample backward', await read(gpu, dx), upsampleBilinearBackwardRef(dout, s), TOL.reduce);
    });
  }
  test('refuses a token count that does not match the grid', async () => {
    await expect(upsampleBilinear(gpu, { x: upload(gpu, new Float32Array(10), [1, 5, 2]), out: poisoned(gpu, [1, 4, 2]), grid: [2, 2], size: [2, 2] }))
      .rejects.toThrow(/x has 5 tokens per image; 0 prefix tokens and a 2x2 grid make 4/);
  });
});

describe('per-pixel loss', () => {
  for (const K of [1, 3]) {
    test(K === 1 ? 'sigmoid binary cross-entropy' : 'softmax cross-entropy over 3 classes', async () => {
      const N = 301;
      const z = randn(N * K, 3, 4);
      const t = K === 1 ? uniform(N, 4) : Float32Array.from({ length: N }, (_, i) => (i * 5) % K);
      const loss = poisoned(gpu, [N]);
      const dz = poisoned(gpu, [N, K]);
      await run(gpu, pixelLoss(gpu, { logits: upload(gpu, z, [N, K]), targets: upload(gpu, t, [N]), loss, dlogits: dz, gradScale: 0.5 }));
      const ref = pixelLossRef(z, t, N, K, 0.5);
      expectClose('loss', await read(gpu, loss), ref.loss, TOL.crossEntropy);
      expectClose('dlogits', await read(gpu, dz), ref.dlogits, TOL.crossEntropy);
    });
  }
  test('a target out of range gives a NaN loss', async () => {
    const loss = poisoned(gpu, [2]);
    await run(gpu, pixelLoss(gpu, { logits: upload(gpu, new Float32Array(4), [2, 2]), targets: upload(gpu, Float32Array.from([1, 2]), [2]), loss, dlogits: poisoned(gpu, [2, 2]) }));
    const l = await read(gpu, loss);
    expect(l[0]).toBeCloseTo(Math.log(2), 6);
    expect(l[1]).toBeNaN();
  });
});

describe('the dense head against the float64 reference (seed order)', () => {
  const s = { B: 2, prefix: 1, h: 3, w: 2, Ho: 7, Wo: 5 };
  const D = 8;
  for (const config of [{ hidden: [6, 5], outputs: 1 }, { hidden: [4], outputs: 3 }, { hidden: [], outputs: 1 }] satisfies SegHeadConfig[]) {
    test(`widths ${segHeadWidths(config, D).join('-')}: logits, loss and every gradient of a training step`, async () => {
      const widths = segHeadWidths(config, D);
      const weights = initSegHead(config, D, 7);
      const head = SegHead.create(gpu, config, D, weights);
      const T = s.prefix + s.h * s.w;
      const N = s.B * s.Ho * s.Wo;
      const tokens = randn(s.B * T * D, 8);
      const targets = config.outputs === 1 ? uniform(N, 9).map((v) => (v > 0.4 ? 1 : 0)) : Float32Array.from({ length: N }, (_, i) => (i * 7) % config.outputs);
      const plan = await planSegmentation(head, { batch: s.B, tokens: T, grid: [s.h, s.w], size: [s.Ho, s.Wo], prefix: s.prefix });
      plan.run(tokens, targets);
      const names = [...plan.grads.keys()];
      const [logits, loss, ...grads] = await readTensors(gpu, [plan.logits, plan.loss, ...names.map((n) => plan.grads.get(n)!)]);
      const ref = segHeadRef(tokens, s, widths, {
        weights: widths.slice(1).map((_, i) => weights.get(`${SEG_HEAD}.fc${i + 1}.weight`)!.data),
        biases: widths.slice(1).map((_, i) => weights.get(`${SEG_HEAD}.fc${i + 1}.bias`)!.data),
      }, targets);
      expect(relL2(logits!, ref.logits)).toBeLessThan(1e-6);
      expect(Math.abs(loss!.reduce((a, b) => a + b, 0) / N - ref.loss)).toBeLessThan(1e-6);
      names.forEach((n, i) => {
        const layer = Number(/fc(\d+)/.exec(n)![1]) - 1;
        const r = n.endsWith('weight') ? ref.dW[layer]! : ref.db[layer]!;
        expect(relL2(grads[i]!, r), n).toBeLessThan(GRAD_REL_L2);
      });
      plan.destroy();
      head.destroy();
    });
  }

  test('d(tokens), with prefix tokens getting none', async () => {
    const config = { hidden: [5], outputs: 1 };
    const widths = segHeadWidths(config, D);
    const weights = initSegHead(config, D, 11);
    const head = SegHead.create(gpu, config, D, weights);
    const T = s.prefix + s.h * s.w;
    const N = s.B * s.Ho * s.Wo;
    const tokensData = randn(s.B * T * D, 12);
    const targetsData = uniform(N, 13).map((v) => (v > 0.5 ? 1 : 0));
    const b = new PlanBuilder(head, 'test');
    const arena = createArena(gpu, 'grads', Object.fromEntries(head.shapes));
    b.grads = new Map(Object.entries(arena.tensors));
    const tokens = b.tensor([s.B, T, D], 'tokens');
    const targets = b.tensor([N], 'targets');
    const plan = segHeadForward(b, SEG_HEAD, tokens, { widths, grid: [s.h, s.w], size: [s.Ho, s.Wo], prefix: s.prefix });
    const dlogits = b.tensor([N, 1], 'dlogits');
    const dtokens = poisoned(gpu, [s.B, T, D]);
    b.add(pixelLoss(gpu, { logits: plan.logits, targets, loss: b.tensor([N], 'loss'), dlogits }));
    plan.backward(b, dlogits, dtokens);
    const dispatches = await b.dispatches();
    writeTensor(gpu, tokens, tokensData);
    writeTensor(gpu, targets, targetsData);
    submit(gpu, dispatches, 'test');
    const ref = segHeadRef(tokensData, s, widths, {
      weights: widths.slice(1).map((_, i) => weights.get(`${SEG_HEAD}.fc${i + 1}.weight`)!.data),
      biases: widths.slice(1).map((_, i) => weights.get(`${SEG_HEAD}.fc${i + 1}.bias`)!.data),
    }, targetsData);
    const got = await readTensor(gpu, dtokens);
    expect(relL2(got, ref.dtokens)).toBeLessThan(GRAD_REL_L2);
    for (let bi = 0; bi < s.B; bi++) for (let i = 0; i < s.prefix * D; i++) expect(got[bi * T * D + i]).toBe(0);
    for (const d of dispatches) d.destroy();
    b.destroyTensors();
    for (const buf of arena.buffers) buf.destroy();
    head.destroy();
  });
});
