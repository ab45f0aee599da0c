import { describe, expect, test } from 'vitest';
import { accumulate, add, copyValues, embedTokens, embedTokensBackward, poolTokens, poolTokensBackward } from '../src/kernels/tokens';
import { sumRows } from '../src/kernels/reduce';
import { expectClose } from './helpers/compare';
import { poisoned, read, run, testGpu, upload } from './helpers/gpu';
import { randn } from './helpers/random';
import { embedTokensBackwardRef, embedTokensRef, meanPoolBackwardRef, meanPoolRef } from './reference/ops';
import { TOL } from './tolerances';

const gpu = await testGpu();

describe('token embedding: [cls, (dist,) registers, patches] + pos (from the first token, or the patches only)', () => {
  // nSingle: cls (1) or cls + dist (2); R registers after them; noEmbedClass: pos covers the patches only.
  test.each([
    ['ViT-Ti, cls token, B=2, 196 patches, D=192', 2, 196, 1, 0, false, 192],
    ['DeiT distilled, cls + dist tokens, odd sizes', 3, 7, 2, 0, false, 5],
    ['no prefix tokens (avg-pool models)', 2, 9, 0, 0, false, 6],
    ['DeiT-III: cls token without a position (no_embed_class), B=2, 196 patches, D=96', 2, 196, 1, 0, true, 96],
    ['DINOv2 with 4 registers, no_embed_class, odd sizes', 3, 9, 1, 4, true, 7],
    ['3 registers inside the position embedding', 2, 5, 1, 3, false, 6],
    ['registers without a class token', 2, 4, 0, 2, true, 5],
  ])('%s', async (_, B, P, nSingle, R, noEmbedClass, D) => {
    const nTok = nSingle + R;
    const T = nTok + P;
    const posFrom = noEmbedClass ? nTok : 0;
    const patches = randn(B * P * D, 1);
    const tokens = randn(nTok * D, 2);
    const pos = randn((T - posFrom) * D, 3);
    // The reference's position embedding covers every token: zero rows for the prefix tokens that take none.
    const fullPos = new Float64Array(T * D);
    fullPos.set(pos, posFrom * D);
    const views = {
      cls: nSingle > 0 ? upload(gpu, tokens.slice(0, D), [D], 'cls') : undefined,
      dist: nSingle > 1 ? upload(gpu, tokens.slice(D, 2 * D), [D], 'dist') : undefined,
      reg: R > 0 ? upload(gpu, tokens.slice(nSingle * D), [1, R, D], 'reg') : undefined,
    };
    const out = poisoned(gpu, [B, T, D], 'out');
    await run(gpu, embedTokens(gpu, { patches: upload(gpu, patches, [B, P, D]), ...views, posFrom, pos: upload(gpu, pos, [T - posFrom, D]), out }));
    expectClose('embed', await read(gpu, out), embedTokensRef(patches, tokens, fullPos, B, P, nTok, D), TOL.elementwise);

    const dout = randn(B * T * D, 4);
    const ref = embedTokensBackwardRef(dout, B, P, nTok, D);
    const dpatches = poisoned(gpu, [B, P, D]);
    const dcls = nSingle > 0 ? poisoned(gpu, [D]) : undefined;
    const ddist = nSingle > 1 ? poisoned(gpu, [D]) : undefined;
    const dreg = R > 0 ? poisoned(gpu, [1, R, D]) : undefined;
    const dpos = poisoned(gpu, [T - posFrom, D]);
    await run(gpu, embedTokensBackward(gpu, { dout: upload(gpu, dout, [B, T, D]), dpatches, dcls, ddist, dreg, regTokens: R, posFrom, dpos }));
    expectClose('dpatches', await read(gpu, dpatches), ref.dpatches, TOL.elementwise);
    expectClose('dpos', await read(gpu, dpos), ref.dpos.slice(posFrom * D), TOL.reduce);
    if (dcls) expectClose('dcls', await read(gpu, dcls), ref.dtokens.slice(0, D), TOL.reduce);
    if (ddist) expectClose('ddist', await read(gpu, ddist), ref.dtokens.slice(D, 2 * D), TOL.reduce);
    if (dreg) expectClose('dreg', await read(gpu, dreg), ref.dtokens.slice(nSingle * D), TOL.reduce);
  });

  test('refuses a position embedding that starts anywhere but the first token or the patches', async () => {
    const D = 4;
    const args = { patches: upload(gpu, randn(2 * 3 * D, 1), [2, 3, D]), cls: upload(gpu, randn(D, 2), [D]), reg: upload(gpu, randn(2 * D, 3), [1, 2, D]) };
    await expect(embedTokens(gpu, { ...args, posFrom: 1, pos: upload(gpu, randn(5 * D, 4), [5, D]), out: poisoned(gpu, [2, 6, D]) })).rejects.toThrow(/posFrom must be 0 or the 3 prefix tokens, got 1/);
    await expect(embedTokens(gpu, { ...args, posFrom: 3, pos: upload(gpu, randn(6 * D, 4), [6, D]), out: poisoned(gpu, [2, 6, D]) })).rejects.toThrow(/pos/);
  });
});

describe('token pooling', () => {
  test.each([
    ['cls token of ViT-B, B=2, T=197, D=768', 2, 197, 768, 0, 1],
    ['avg pool over patch tokens after 1 prefix token', 3, 10, 7, 1, 10],
    ['avg pool with no prefix', 2, 5, 3, 0, 5],
  ])('%s', async (_, B, T, D, start, end) => {
    const x = randn(B * T * D, 5);
    const out = poisoned(gpu, [B, D]);
    await run(gpu, poolTokens(gpu, { x: upload(gpu, x, [B, T, D]), out, start, end }));
    // The float64 reference pools [start, T); the cls case is the mean over [0, 1), i.e. a copy.
    const ref = end === T ? meanPoolRef(x, B, T, D, start) : Float64Array.from({ length: B * D }, (_, i) => x[Math.floor(i / D) * T * D + (i % D)]!);
    expectClose('pool', await read(gpu, out), ref, TOL.elementwise);

    const dout = randn(B * D, 6);
    const dx = poisoned(gpu, [B, T, D]);
    await run(gpu, poolTokensBackward(gpu, { dout: upload(gpu, dout, [B, D]), dx, start, end }));
    const dref = end === T ? meanPoolBackwardRef(dout, B, T, D, start)
      : Float64Array.from({ length: B * T * D }, (_, i) => (Math.floor(i / D) % T === 0 ? dout[Math.floor(i / (T * D)) * D + (i % D)]! : 0));
    expectClose('pool backward', await read(gpu, dx), dref, TOL.elementwise);
  });
  test('rejects a token range outside the sequence', async () => {
    await expect(poolTokens(gpu, { x: upload(gpu, new Float32Array(12), [1, 4, 3]), out: poisoned(gpu, [1, 3]), start: 2, end: 5 })).rejects.toThrow(/pool tokens: token range \[2, 5\) is not inside \[0, 4\)/);
  });
});

describe('residual add, gradient accumulation, copies, column sums', () => {
  test('add, accumulate and copy at ViT-B size (B=2, T=197, D=768) and an odd size', async () => {
    for (const n of [2 * 197 * 768, 1001]) {
      const a = randn(n, 7);
      const b = randn(n, 8);
      const out = poisoned(gpu, [n]);
      await run(gpu, add(gpu, { a: upload(gpu, a, [n]), b: upload(gpu, b, [n]), out }));
      expectClose('add', await read(gpu, out), a.map((v, i) => v + b[i]!), TOL.elementwise);
      await run(gpu, add(gpu, { a: upload(gpu, a, [n]), b: upload(gpu, b, [n]), out, alpha: 0.5 }));
      expectClose('average', await read(gpu, out), a.map((v, i) => (v + b[i]!) / 2), TOL.elementwise);
      const acc = upload(gpu, b, [n]);
      await run(gpu, accumulate(gpu, { a: upload(gpu, a, [n]), out: acc }));
      expectClose('accumulate', await read(gpu, acc), a.map((v, i) => v + b[i]!), TOL.elementwise);
      const copy = poisoned(gpu, [n]);
      await run(gpu, copyValues(gpu, { a: upload(gpu, a, [n]), out: copy }));
      expect(await read(gpu, copy)).toEqual(a);
    }
  });
  test('sum over rows with a stride, overwriting and accumulating (dbias)', async () => {
    const rows = 2 * 197;
    const cols = 768;
    const x = randn(rows * cols, 9);
    const ref = new Float64Array(cols);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) ref[c] = ref[c]! + x[r * cols + c]!;
    const out = poisoned(gpu, [cols]);
    await run(gpu, sumRows(gpu, { x: upload(gpu, x, [rows, cols]), out, rows }));
    expectClose('sum rows', await read(gpu, out), ref, TOL.reduce);
    await run(gpu, sumRows(gpu, { x: upload(gpu, x, [rows, cols]), out, rows, accumulate: true }));
    expectClose('sum rows accumulated', await read(gpu, out), ref.map((v) => 2 * v), TOL.reduce);
  });
  test('rejects rows that run past the input', async () => {
    await expect(sumRows(gpu, { x: upload(gpu, new Float32Array(10), [10]), out: poisoned(gpu, [4]), rows: 3 })).rejects.toThrow(/sum rows: 3 rows of 4 with stride 4 from offset 0 run past x \(10 elements\)/);
  });
});
