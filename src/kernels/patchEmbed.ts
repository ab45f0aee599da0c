// Patch embedding: a convolution with kernel = stride = P, as patchify + matmul.
//   image [B, C, H, W]   weight [D, C, P, P]   bias [D]   cols [B, nP, C*P*P] (scratch)   out [B, nP, D]
import type { Gpu } from '../gpu/device';
import { ceilDiv, createDispatch, grid1d, type Dispatch } from '../gpu/dispatch';
import { numel, type Tensor } from '../gpu/tensor';
import { checkShape, checkTensor, fail, shapeStr, view } from './check';
import { matmul } from './matmul';
import { sumRows } from './reduce';
import { shaders } from './shaders';

function geometry(gpu: Gpu, name: string, image: Tensor, weight: Tensor) {
  checkTensor(gpu, name, 'image', image);
  checkTensor(gpu, name, 'weight', weight);
  if (image.shape.length !== 4) fail(name, `image has shape ${shapeStr(image.shape)}, expected [B, C, H, W]`);
  if (weight.shape.length !== 4) fail(name, `weight has shape ${shapeStr(weight.shape)}, expected [D, C, P, P]`);
  const [B, C, H, W] = image.shape as [number, number, number, number];
  const [D, wc, P, P2] = weight.shape as [number, number, number, number];
  if (P !== P2) fail(name, `weight has shape ${shapeStr(weight.shape)}: patches must be square`);
  if (wc !== C) fail(name, `image has ${C} channels but weight expects ${wc}`);
  if (H % P !== 0 || W % P !== 0) fail(name, `image ${H}x${W} is not a whole number of ${P}x${P} patches`);
  const nP = (H / P) * (W / P);
  return { B, C, H, W, D, P, nP, K: C * P * P };
}

export interface PatchEmbedArgs { image: Tensor; weight: Tensor; bias: Tensor; cols: Tensor; out: Tensor; label?: string }

export async function patchEmbed(gpu: Gpu, args: PatchEmbedArgs): Promise<Dispatch[]> {
  const name = args.label ?? 'patch embed';
  const g = geometry(gpu, name, args.image, args.weight);
  checkShape(name, 'bias', args.bias, [g.D]);
  checkShape(name, 'cols', args.cols, [g.B, g.nP, g.K]);
  checkShape(name, 'out', args.out, [g.B, g.nP, g.D]);
  const n = numel(args.cols.shape);
  return Promise.all([
    createDispatch(gpu, {
      family: shaders.patchEmbed, entry: 'patchify', label: `${name} patchify`,
      params: { n, C: g.C, H: g.H, W: g.W, P: g.P },
      tensors: { image: args.image, cols: args.cols }, workgroups: grid1d(gpu, ceilDiv(n, 256)),
    }),
    matmul(gpu, {
      a: view(args.cols, [g.B * g.nP, g.K]), b: view(args.weight, [g.D, g.K]), c: view(args.out, [g.B * g.nP, g.D]),
      bias: args.bias, transB: true, epilogue: 'bias', label: `${name} matmul`,
    }),
  ]);
}

/** dweight = dout^T cols, dbias = column sums of dout. `cols` is the forward pass's scratch. */
export async function patchEmbedBackward(gpu: Gpu, args: { cols: Tensor; dout: Tensor; dweight: Tensor; dbias: Tensor; accumulate?: boolean; label?: string }): Promise<Dispatch[]> {
  const name = args.label ?? 'patch embed backward';
  checkTensor(gpu, name, 'dweight', args.dweight);
  if (args.dweight.shape.length !== 4) fail(name, `dweight has shape ${shapeStr(args.dweight.shape)}, expected [D, C, P, P]`);
  const D = args.dweight.shape[0]!;
  const K = numel(args.dweight.shape) / D;
  if (args.cols.shape.length !== 3) fail(name, `cols has shape ${shapeStr(args.cols.shape)}, expected [B, nP, ${K}]`);
  const [B, nP] = args.cols.shape as [number, number];
  checkShape(name, 'cols', args.cols, [B, nP, K]);
  checkShape(name, 'dout', args.dout, [B, nP, D]);
  checkShape(name, 'dbias', args.dbias, [D]);
  const accumulate = args.accumulate ?? false;
  return Promise.all([
    matmul(gpu, { a: view(args.dout, [B * nP, D]), b: view(args.cols, [B * nP, K]), c: view(args.dweight, [D, K]), transA: true, accumulate, label: `${name} dweight` }),
    sumRows(gpu, { x: args.dout, out: args.dbias, rows: B * nP, accumulate, label: `${name} dbias` }),
  ]);
}
