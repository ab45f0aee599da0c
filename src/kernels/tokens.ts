// The small ops of a ViT (shaders/tokens.wgsl): token assembly with the position embedding,
// token pooling, residual add, gradient accumulation and copies.
import type { Gpu } from '../gpu/device';
import { ceilDiv, createDispatch, grid1d, type Dispatch } from '../gpu/dispatch';
import { numel, type Tensor } from '../gpu/tensor';
import { checkDistinct, checkNumel, checkShape, checkTensor, fail, shapeStr } from './check';
import { sumRows } from './reduce';
import { shaders } from './shaders';

async function elementwise(gpu: Gpu, entry: string, label: string, n: number, tensors: Record<string, Tensor>, shape: { B?: number; T?: number; D?: number; start?: number; end?: number; alpha?: number; reg?: number; posFrom?: number } = {}, accumulate = false): Promise<Dispatch> {
  return createDispatch(gpu, {
    family: shaders.tokens, entry, label, tensors, overrides: accumulate ? { ACCUMULATE: true } : {},
    params: { n, B: shape.B ?? 0, T: shape.T ?? 0, D: shape.D ?? 0, n_tok: shape.start ?? 0, end: shape.end ?? 0, alpha: shape.alpha ?? 1, n_reg: shape.reg ?? 0, pos_from: shape.posFrom ?? 0 },
    workgroups: grid1d(gpu, ceilDiv(n, 256)),
  });
}

function bpd(gpu: Gpu, name: string, arg: string, t: Tensor): [number, number, number] {
  checkTensor(gpu, name, arg, t);
  if (t.shape.length !== 3) fail(name, `${arg} has shape ${shapeStr(t.shape)}, expected [B, T, D]`);
  return t.shape as [number, number, number];
}

/**
 * out [B, nTok + P, D] = [cls; dist; reg; patches [B, P, D]] + pos on tokens posFrom.. ; cls and dist
 * are [D] each, reg [R, D], all optional; pos is [nTok - posFrom + P, D]. posFrom is 0 (every
 * token has a position) or nTok (timm's no_embed_class: the patches only). Default 0.
 */
export async function embedTokens(gpu: Gpu, args: { patches: Tensor; cls?: Tensor; dist?: Tensor; reg?: Tensor; posFrom?: number; pos: Tensor; out: Tensor; label?: string }): Promise<Dispatch> {
  const name = args.label ?? 'embed tokens';
  const [B, P, D] = bpd(gpu, name, 'patches', args.patches);
  if (args.dist && !args.cls) fail(name, 'a dist token needs a cls token before it');
  if (args.cls) checkNumel(name, 'cls', args.cls, D);
  if (args.dist) checkNumel(name, 'dist', args.dist, D);
  const R = args.reg ? numel(args.reg.shape) / D : 0;
  if (!Number.isInteger(R)) fail(name, `reg has ${numel(args.reg!.shape)} values, not a whole number of tokens of ${D}`);
  const nTok = (args.cls ? 1 : 0) + (args.dist ? 1 : 0) + R;
  const posFrom = args.posFrom ?? 0;
  if (posFrom !== 0 && posFrom !== nTok) fail(name, `posFrom must be 0 or the ${nTok} prefix tokens, got ${posFrom}`);
  const T = nTok + P;
  checkNumel(name, 'pos', args.pos, (T - posFrom) * D);
  checkShape(name, 'out', args.out, [B, T, D]);
  checkDistinct(name, { out: args.out }, { patches: args.patches, cls: args.cls, dist: args.dist, reg: args.reg, pos: args.pos });
  // Absent tokens are never read; any bound buffer fills their binding.
  const tensors = { a: args.patches, b: args.cls ?? args.pos, d: args.dist ?? args.pos, e: args.reg ?? args.pos, c: args.pos, out: args.out };
  return elementwise(gpu, 'embed_tokens', name, B * T * D, tensors, { B, T, D, start: nTok, reg: R, posFrom });
}

/** dpatches from dout rows nTok..; dcls, ddist, dreg (regTokens rows) and dpos (rows posFrom..) as sums over the batch. */
export async function embedTokensBackward(gpu: Gpu, args: { dout: Tensor; dpatches: Tensor; dcls?: Tensor; ddist?: Tensor; dreg?: Tensor; regTokens?: number; posFrom?: number; dpos: Tensor; accumulate?: boolean; label?: string }): Promise<Dispatch[]> {
  const name = args.label ?? 'embed tokens backward';
  const [B, T, D] = bpd(gpu, name, 'dout', args.dout);
  if (args.ddist && !args.dcls) fail(name, 'a dist token needs a cls token before it');
  const R = args.regTokens ?? 0;
  const nTok = (args.dcls ? 1 : 0) + (args.ddist ? 1 : 0) + R;
  const posFrom = args.posFrom ?? 0;
  if (posFrom !== 0 && posFrom !== nTok) fail(name, `posFrom must be 0 or the ${nTok} prefix tokens, got ${posFrom}`);
  if (args.dcls) checkNumel(name, 'dcls', args.dcls, D);
  if (args.ddist) checkNumel(name, 'ddist', args.ddist, D);
  if (args.dreg) checkNumel(name, 'dreg', args.dreg, R * D);
  checkShape(name, 'dpatches', args.dpatches, [B, T - nTok, D]);
  checkNumel(name, 'dpos', args.dpos, (T - posFrom) * D);
  const accumulate = args.accumulate ?? false;
  const sumOverBatch = (out: Tensor, offset: number, what: string) =>
    sumRows(gpu, { x: args.dout, out, rows: B, rowStride: T * D, offset, accumulate, label: `${name} ${what}` });
  const work = [
    elementwise(gpu, 'embed_tokens_backward', `${name} dpatches`, B * (T - nTok) * D, { a: args.dout, out: args.dpatches }, { B, T, D, start: nTok }),
    sumOverBatch(args.dpos, posFrom * D, 'dpos'),
  ];
  if (args.dcls) work.push(sumOverBatch(args.dcls, 0, 'dcls'));
  if (args.ddist) work.push(sumOverBatch(args.ddist, D, 'ddist'));
  // A frozen embedding has no dreg: the tokens are counted, nothing is summed.
  if (args.dreg) work.push(sumOverBatch(args.dreg, (nTok - R) * D, 'dreg'));
  return Promise.all(work);
}

/** out [B, D] = mean of x [B, T, D] over tokens [start, end). cls pooling is [0, 1). */
export async function poolTokens(gpu: Gpu, args: { x: Tensor; out: Tensor; start: number; end: number; label?: string }): Promise<Dispatch> {
  const name = args.label ?? 'pool tokens';
  const [B, T, D] = bpd(gpu, name, 'x', args.x);
  if (!(Number.isInteger(args.start) && Number.isInteger(args.end) && args.start >= 0 && args.start < args.end && args.end <= T)) {
    fail(name, `token range [${args.start}, ${args.end}) is not inside [0, ${T})`);
  }
  checkShape(name, 'out', args.out, [B, D]);
  checkDistinct(name, { out: args.out }, { x: args.x });
  return elementwise(gpu, 'pool_tokens', name, B * D, { a: args.x, out: args.out }, { B, T, D, start: args.start, end: args.end });
}

export async function poolTokensBackward(gpu: Gpu, args: { dout: Tensor; dx: Tensor; start: number; end: number; accumulate?: boolean; label?: string }): Promise<Dispatch> {
  const name = args.label ?? 'pool tokens backward';
  const [B, T, D] = bpd(gpu, name, 'dx', args.dx);
  if (!(args.start >= 0 && args.start < args.end && args.end <= T)) fail(name, `token range [${args.start}, ${args.end}) is not inside [0, ${T})`);
  checkShape(name, 'dout', args.dout, [B, D]);
  checkDistinct(name, { dx: args.dx }, { dout: args.dout });
  return elementwise(gpu, 'pool_tokens_backward', name, B * T * D, { a: args.dout, out: args.dx }, { B, T, D, start: args.start, end: args.end }, args.accumulate);
}

/** out = (a + b) * alpha, alpha 1 by default. */
export async function add(gpu: Gpu, args: { a: Tensor; b: Tensor; out: Tensor; alpha?: number; label?: string }): Promise<Dispatch> {
  const name = args.label ?? 'add';
  checkTensor(gpu, name, 'a', args.a);
  const n = numel(args.a.shape);
  checkNumel(name, 'b', args.b, n);
  checkNumel(name, 'out', args.out, n);
  checkDistinct(name, { out: args.out }, { a: args.a, b: args.b });
  return elementwise(gpu, 'add', name, n, { a: args.a, b: args.b, out: args.out }, { alpha: args.alpha ?? 1 });
}

/** out += a. */
export async function accumulate(gpu: Gpu, args: { a: Tensor; out: Tensor; label?: string }): Promise<Dispatch> {
  const name = args.label ?? 'accumulate';
  checkTensor(gpu, name, 'a', args.a);
  const n = numel(args.a.shape);
  checkNumel(name, 'out', args.out, n);
  checkDistinct(name, { out: args.out }, { a: args.a });
  return elementwise(gpu, 'accumulate', name, n, { a: args.a, out: args.out });
}

/** out = a: keeps a value that a later dispatch would overwrite in a shared buffer. */
export async function copyValues(gpu: Gpu, args: { a: Tensor; out: Tensor; label?: string }): Promise<Dispatch> {
  const name = args.label ?? 'copy';
  checkTensor(gpu, name, 'a', args.a);
  const n = numel(args.a.shape);
  checkNumel(name, 'out', args.out, n);
  checkDistinct(name, { out: args.out }, { a: args.a });
  return elementwise(gpu, 'copy_values', name, n, { a: args.a, out: args.out });
}
