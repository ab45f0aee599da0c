// The Swin Transformer's index maps (shaders/swin.wgsl), following timm 1.0:
//   x        [B, H*W, C]            tokens of an H x W map, row-major
//   windows  [B*nW, N, C]           N = wh*ww tokens per window, nW = gh*gw windows per image
//   table    [(2wh-1)*(2ww-1), nh]  relative position bias table
//   bias     [planes, nh, N, N]     planes = nW with a shift (the mask differs per window), else 1
//   merged   [B, ceil(H/2)*ceil(W/2), 4C]
// A block's window attention: windowPartition(norm1(x)) -> qkv linear -> attention with
// bias = relativePositionBias(table) (batch B*nW, T = N; the attention kernel broadcasts the
// planes by batch % nW, which is the window) -> proj linear -> windowReverse({ accumulate }) into
// the residual stream. Backward: windowPartition of the stream's gradient, the linears and
// attentionBackward({ dscores }), relativePositionBiasBackward(dscores), windowReverse of the
// windows' gradient.
import type { Gpu } from '../gpu/device';
import { ceilDiv, createDispatch, grid1d, type Dispatch } from '../gpu/dispatch';
import type { Tensor } from '../gpu/tensor';
import { checkDistinct, checkShape, checkTensor, fail, shapeStr } from './check';
import { sumRows } from './reduce';
import { shaders } from './shaders';

/** A token map cut into windows: the window and shift after timm's clamping (see swinWindowLayout). */
export interface WindowLayout {
  H: number;
  W: number;
  /** [wh, ww]. */
  window: readonly [number, number];
  /** [sh, sw], 0 <= s < window along each axis; 0 for unshifted blocks. */
  shift: readonly [number, number];
}

/**
 * timm's SwinTransformerBlock._calc_window_shift: along each axis a window no smaller than the map
 * shrinks to the map and does not shift; otherwise the shift is window // 2 on shifted blocks.
 */
export function swinWindowLayout(H: number, W: number, window: number, shifted: boolean): WindowLayout {
  const axis = (r: number): [number, number] => (r <= window ? [r, 0] : [window, shifted ? Math.floor(window / 2) : 0]);
  const [wh, sh] = axis(H);
  const [ww, sw] = axis(W);
  return { H, W, window: [wh, ww], shift: [sh, sw] };
}

/** Window grid of a layout: gh x gw windows of N tokens, and the number of bias planes. */
export function windowGrid(l: WindowLayout): { gh: number; gw: number; nW: number; N: number; planes: number; tableSize: number } {
  const [wh, ww] = l.window;
  const gh = ceilDiv(l.H, wh);
  const gw = ceilDiv(l.W, ww);
  const shifted = l.shift[0] > 0 || l.shift[1] > 0;
  return { gh, gw, nW: gh * gw, N: wh * ww, planes: shifted ? gh * gw : 1, tableSize: (2 * wh - 1) * (2 * ww - 1) };
}

function checkLayout(name: string, l: WindowLayout): void {
  const ok = (v: number) => Number.isInteger(v) && v > 0;
  if (!ok(l.H) || !ok(l.W)) fail(name, `map ${l.H} x ${l.W} must have positive integer sides`);
  for (const a of [0, 1] as const) {
    const [win, shift] = [l.window[a], l.shift[a]];
    if (!ok(win) || !Number.isInteger(shift) || shift < 0 || shift >= win) {
      fail(name, `window ${shapeStr(l.window)} with shift ${shapeStr(l.shift)}: need integer windows >= 1 and 0 <= shift < window`);
    }
  }
}

/** Uniforms of every entry: shape fields the entry does not use are 0. */
function swinParams(n: number, f: Partial<Record<'C' | 'H' | 'W' | 'wh' | 'ww' | 'sh' | 'sw' | 'gh' | 'gw' | 'heads' | 'planes', number>>) {
  return { n, C: 0, H: 0, W: 0, wh: 0, ww: 0, sh: 0, sw: 0, gh: 0, gw: 0, heads: 0, planes: 0, ...f };
}

function layoutParams(l: WindowLayout) {
  const { gh, gw } = windowGrid(l);
  return { H: l.H, W: l.W, wh: l.window[0], ww: l.window[1], sh: l.shift[0], sw: l.shift[1], gh, gw };
}

async function elementwise(gpu: Gpu, entry: string, label: string, params: ReturnType<typeof swinParams>, src: Tensor, dst: Tensor, accumulate = false): Promise<Dispatch> {
  checkDistinct(label, { dst }, { src });
  return createDispatch(gpu, {
    family: shaders.swin, entry, label, params, overrides: accumulate ? { ACCUMULATE: true } : {},
    tensors: { src, dst },
    workgroups: grid1d(gpu, ceilDiv(params.n, 256)),
  });
}

/** Batch and channels of a token tensor [B, H*W, C]. */
function tokensShape(gpu: Gpu, name: string, arg: string, t: Tensor, H: number, W: number): [number, number] {
  checkTensor(gpu, name, arg, t);
  if (t.shape.length !== 3 || t.shape[1] !== H * W) fail(name, `${arg} has shape ${shapeStr(t.shape)}, expected [B, ${H * W}, C] for a ${H} x ${W} map`);
  return [t.shape[0]!, t.shape[2]!];
}

/** windows [B*nW, N, C] <- x [B, H*W, C]: roll by -shift, pad bottom/right with zeros, partition. */
export async function windowPartition(gpu: Gpu, args: { x: Tensor; windows: Tensor; layout: WindowLayout; label?: string }): Promise<Dispatch> {
  const name = args.label ?? 'window partition';
  checkLayout(name, args.layout);
  const [B, C] = tokensShape(gpu, name, 'x', args.x, args.layout.H, args.layout.W);
  const { nW, N } = windowGrid(args.layout);
  checkShape(name, 'windows', args.windows, [B * nW, N, C]);
  return elementwise(gpu, 'window_partition', name, swinParams(B * nW * N * C, { C, ...layoutParams(args.layout) }), args.x, args.windows);
}

/**
 * x [B, H*W, C] (+)= windows [B*nW, N, C] reversed, cropped and rolled back by +shift. The exact
 * inverse of windowPartition on the real tokens, and its backward (padded rows are dropped).
 */
export async function windowReverse(gpu: Gpu, args: { windows: Tensor; x: Tensor; layout: WindowLayout; accumulate?: boolean; label?: string }): Promise<Dispatch> {
  const name = args.label ?? 'window reverse';
  checkLayout(name, args.layout);
  const [B, C] = tokensShape(gpu, name, 'x', args.x, args.layout.H, args.layout.W);
  const { nW, N } = windowGrid(args.layout);
  checkShape(name, 'windows', args.windows, [B * nW, N, C]);
  const { H, W } = args.layout;
  return elementwise(gpu, 'window_reverse', name, swinParams(B * H * W * C, { C, ...layoutParams(args.layout) }), args.windows, args.x, args.accumulate);
}

/** bias [planes, nh, N, N] = table[index(i, j), h] + the shift mask of window `plane` (-100 across regions). */
export async function relativePositionBias(gpu: Gpu, args: { table: Tensor; bias: Tensor; layout: WindowLayout; label?: string }): Promise<Dispatch> {
  const name = args.label ?? 'relative position bias';
  checkLayout(name, args.layout);
  checkTensor(gpu, name, 'table', args.table);
  const { N, planes, tableSize } = windowGrid(args.layout);
  if (args.table.shape.length !== 2 || args.table.shape[0] !== tableSize) {
    fail(name, `table has shape ${shapeStr(args.table.shape)}, expected [${tableSize}, heads] for window ${shapeStr(args.layout.window)}`);
  }
  const heads = args.table.shape[1]!;
  checkShape(name, 'bias', args.bias, [planes, heads, N, N]);
  const params = swinParams(planes * heads * N * N, { heads, planes, ...layoutParams(args.layout) });
  return elementwise(gpu, 'relative_position_bias', name, params, args.table, args.bias);
}

/**
 * dtable [(2wh-1)*(2ww-1), nh] (+)= the sum over planes p and pairs (i, j) with index(i, j) = idx of
 * dbias [P, nh, N, N]; P is anything, e.g. attentionBackward's dscores [B*nW, nh, N, N] (the mask
 * has no gradient, so every window adds to the same table). With P > 1 a `scratch` [nh, N, N]
 * first takes the sum over P (sumRows, P-way parallel over nh*N*N columns), so the table pass
 * loops over at most N pairs per entry.
 */
export async function relativePositionBiasBackward(gpu: Gpu, args: { dbias: Tensor; dtable: Tensor; window: readonly [number, number]; scratch?: Tensor; accumulate?: boolean; label?: string }): Promise<Dispatch[]> {
  const name = args.label ?? 'relative position bias backward';
  const [wh, ww] = args.window;
  if (![wh, ww].every((v) => Number.isInteger(v) && v > 0)) fail(name, `window ${shapeStr(args.window)} must be positive integers`);
  const N = wh * ww;
  const tableSize = (2 * wh - 1) * (2 * ww - 1);
  checkTensor(gpu, name, 'dbias', args.dbias);
  const ds = args.dbias.shape;
  if (ds.length !== 4 || ds[2] !== N || ds[3] !== N) fail(name, `dbias has shape ${shapeStr(ds)}, expected [P, heads, ${N}, ${N}]`);
  const [P, heads] = ds as [number, number];
  checkShape(name, 'dtable', args.dtable, [tableSize, heads]);
  let planes = args.dbias;
  const work: Promise<Dispatch>[] = [];
  if (P > 1) {
    if (!args.scratch) fail(name, `dbias has ${P} planes: a scratch [${heads}, ${N}, ${N}] takes their sum`);
    checkShape(name, 'scratch', args.scratch, [heads, N, N]);
    checkDistinct(name, { scratch: args.scratch }, { dbias: args.dbias, dtable: args.dtable });
    work.push(sumRows(gpu, { x: args.dbias, out: args.scratch, rows: P, label: `${name} sum over planes` }));
    planes = args.scratch;
  }
  const params = swinParams(tableSize * heads, { wh, ww, heads, planes: 1 });
  work.push(elementwise(gpu, 'relative_position_bias_backward', name, params, planes, args.dtable, args.accumulate));
  return Promise.all(work);
}

/** out [B, ceil(H/2)*ceil(W/2), 4C] = [x(2i,2j), x(2i+1,2j), x(2i,2j+1), x(2i+1,2j+1)], zero-padded; then LayerNorm(4C) and Linear. */
export async function patchMerge(gpu: Gpu, args: { x: Tensor; out: Tensor; H: number; W: number; label?: string }): Promise<Dispatch> {
  const name = args.label ?? 'patch merge';
  const [B, C] = tokensShape(gpu, name, 'x', args.x, args.H, args.W);
  const [gh, gw] = [ceilDiv(args.H, 2), ceilDiv(args.W, 2)];
  checkShape(name, 'out', args.out, [B, gh * gw, 4 * C]);
  return elementwise(gpu, 'patch_merge', name, swinParams(B * gh * gw * 4 * C, { C, H: args.H, W: args.W, gh, gw }), args.x, args.out);
}

/** dx [B, H*W, C] (+)= the entries of dout [B, ceil(H/2)*ceil(W/2), 4C] that each token fed. */
export async function patchMergeBackward(gpu: Gpu, args: { dout: Tensor; dx: Tensor; H: number; W: number; accumulate?: boolean; label?: string }): Promise<Dispatch> {
  const name = args.label ?? 'patch merge backward';
  const [B, C] = tokensShape(gpu, name, 'dx', args.dx, args.H, args.W);
  const [gh, gw] = [ceilDiv(args.H, 2), ceilDiv(args.W, 2)];
  checkShape(name, 'dout', args.dout, [B, gh * gw, 4 * C]);
  const params = swinParams(B * args.H * args.W * C, { C, H: args.H, W: args.W, gh, gw });
  return elementwise(gpu, 'patch_merge_backward', name, params, args.dout, args.dx, args.accumulate);
}
