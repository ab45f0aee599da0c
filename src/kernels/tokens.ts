// The small ops of a ViT (shaders/tokens.wgsl): token assembly with the position embedding,
// token pooling, residual add and gradient accumulation.
import type { Gpu } from '../gpu/device';
import { ceilDiv, createDispatch, grid1d, type Dispatch } from '../gpu/dispatch';
import { numel, type Tensor } from '../gpu/tensor';
import { checkDistinct, checkNumel, checkShape, checkTensor, fail, shapeStr } from './check';
import { sumRows } from './reduce';
import { shaders } from './shaders';

function elementwise(gpu: Gpu, entry: string, label: string, n: number, tensors: Record<string, Tensor>, shape: { B?: number; T?: number; D?: number; start?: number; end?: number } = {}): Promise<Dispatch> {
  return createDispatch(gpu, {
    family: shaders.tokens, entry, label, tensors,
    params: { n, B: shape.B ?? 0, T: shape.T ?? 0, D: shape.D ?? 0, n_tok: shape.start ?? 0, end: shape.end ?? 0 },
    workgroups: grid1d(gpu, ceilDiv(n, 256)),
  });
}

function bpd(gpu: Gpu, name: string, arg: string, t: Tensor): [number, number, number] {
  checkTensor(gpu, name, arg, t);
  if (t.shape.length !== 3) fail(name, `${arg} has shape ${shapeStr(t.shape)}, expected [B, T, D]`);
  return t.shape as [number, number, number];
}

/** out [B, nTok + P, D] = concat(tokens [nTok, D] (cls, dist), patches [B, P, D]) + pos [nTok + P, D]. */
export function embedTokens(gpu: Gpu, args: { patches: Tensor; tokens?: Tensor; pos: Tensor; out: Tensor; label?: string }): Promise<Dispatch> {
  const name = args.label ?? 'embed tokens';
  const [B, P, D] = bpd(gpu, name, 'patches', args.patches);
  const nTok = args.tokens ? args.tokens.shape[0]! : 0;
  if (args.tokens) checkShape(name, 'tokens', args.tokens, [nTok, D]);
  const T = nTok + P;
  checkShape(name, 'pos', args.pos, [T, D]);
  checkShape(name, 'out', args.out, [B, T, D]);
  checkDistinct(name, { out: args.out }, { patches: args.patches, tokens: args.tokens, pos: args.pos });
  // The shader reads tokens from `b`; with none, any bound buffer serves (never read).
  return elementwise(gpu, 'embed_tokens', name, B * T * D, { a: args.patches, b: args.tokens ?? args.pos, c: args.pos, out: args.out }, { B, T, D, start: nTok });
}

/** dpatches from dout rows nTok..; dtokens and dpos as sums over the batch. */
export function embedTokensBackward(gpu: Gpu, args: { dout: Tensor; dpatches: Tensor; dtokens?: Tensor; dpos: Tensor; accumulate?: boolean; label?: string }): Promise<Dispatch[]> {
  const name = args.label ?? 'embed tokens backward';
  const [B, T, D] = bpd(gpu, name, 'dout', args.dout);
  const nTok = args.dtokens ? args.dtokens.shape[0]! : 0;
  if (args.dtokens) checkShape(name, 'dtokens', args.dtokens, [nTok, D]);
  checkShape(name, 'dpatches', args.dpatches, [B, T - nTok, D]);
  checkShape(name, 'dpos', args.dpos, [T, D]);
  const accumulate = args.accumulate ?? false;
  const work = [
    elementwise(gpu, 'embed_tokens_backward', `${name} dpatches`, B * (T - nTok) * D, { a: args.dout, out: args.dpatches }, { B, T, D, start: nTok }),
    sumRows(gpu, { x: args.dout, out: args.dpos, rows: B, rowStride: T * D, accumulate, label: `${name} dpos` }),
  ];
  if (args.dtokens) work.push(sumRows(gpu, { x: args.dout, out: args.dtokens, rows: B, rowStride: T * D, accumulate, label: `${name} dtokens` }));
  return Promise.all(work);
}

/** out [B, D] = mean of x [B, T, D] over tokens [start, end). cls pooling is [0, 1). */
export function poolTokens(gpu: Gpu, args: { x: Tensor; out: Tensor; start: number; end: number; label?: string }): Promise<Dispatch> {
  const name = args.label ?? 'pool tokens';
  const [B, T, D] = bpd(gpu, name, 'x', args.x);
  if (!(Number.isInteger(args.start) && Number.isInteger(args.end) && args.start >= 0 && args.start < args.end && args.end <= T)) {
    fail(name, `token range [${args.start}, ${args.end}) is not inside [0, ${T})`);
  }
  checkShape(name, 'out', args.out, [B, D]);
  checkDistinct(name, { out: args.out }, { x: args.x });
  return elementwise(gpu, 'pool_tokens', name, B * D, { a: args.x, out: args.out }, { B, T, D, start: args.start, end: args.end });
}

export function poolTokensBackward(gpu: Gpu, args: { dout: Tensor; dx: Tensor; start: number; end: number; label?: string }): Promise<Dispatch> {
  const name = args.label ?? 'pool tokens backward';
  const [B, T, D] = bpd(gpu, name, 'dx', args.dx);
  if (!(args.start >= 0 && args.start < args.end && args.end <= T)) fail(name, `token range [${args.start}, ${args.end}) is not inside [0, ${T})`);
  checkShape(name, 'dout', args.dout, [B, D]);
  checkDistinct(name, { dx: args.dx }, { dout: args.dout });
  return elementwise(gpu, 'pool_tokens_backward', name, B * T * D, { a: args.dout, out: args.dx }, { B, T, D, start: args.start, end: args.end });
}

/** out = a + b. */
export function add(gpu: Gpu, args: { a: Tensor; b: Tensor; out: Tensor; label?: string }): Promise<Dispatch> {
  const name = args.label ?? 'add';
  checkTensor(gpu, name, 'a', args.a);
  const n = numel(args.a.shape);
  checkNumel(name, 'b', args.b, n);
  checkNumel(name, 'out', args.out, n);
  checkDistinct(name, { out: args.out }, { a: args.a, b: args.b });
  return elementwise(gpu, 'add', name, n, { a: args.a, b: args.b, out: args.out });
}

/** out += a. */
export function accumulate(gpu: Gpu, args: { a: Tensor; out: Tensor; label?: string }): Promise<Dispatch> {
  const name = args.label ?? 'accumulate';
  checkTensor(gpu, name, 'a', args.a);
  const n = numel(args.a.shape);
  checkNumel(name, 'out', args.out, n);
  checkDistinct(name, { out: args.out }, { a: args.a });
  return elementwise(gpu, 'accumulate', name, n, { a: args.a, out: args.out });
}
