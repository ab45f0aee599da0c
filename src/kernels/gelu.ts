// Exact GELU, element-wise (shaders/gelu.wgsl). Also fused into matmul as an epilogue.
import type { Gpu } from '../gpu/device';
import { ceilDiv, createDispatch, grid1d, type Dispatch } from '../gpu/dispatch';
import { numel, type Tensor } from '../gpu/tensor';
import { checkDistinct, checkNumel, checkTensor } from './check';
import { shaders } from './shaders';

export async function gelu(gpu: Gpu, args: { x: Tensor; y: Tensor; label?: string }): Promise<Dispatch> {
  const name = args.label ?? 'gelu';
  checkTensor(gpu, name, 'x', args.x);
  const n = numel(args.x.shape);
  checkNumel(name, 'y', args.y, n);
  checkDistinct(name, { y: args.y }, { x: args.x });
  return createDispatch(gpu, {
    family: shaders.gelu, entry: 'gelu_forward', label: name, params: { n },
    tensors: { x: args.x, y: args.y }, workgroups: grid1d(gpu, ceilDiv(n, 256)),
  });
}

/** dx = dy * GELU'(x), with x the pre-activation. */
export async function geluBackward(gpu: Gpu, args: { x: Tensor; dy: Tensor; dx: Tensor; label?: string }): Promise<Dispatch> {
  const name = args.label ?? 'gelu backward';
  checkTensor(gpu, name, 'x', args.x);
  const n = numel(args.x.shape);
  checkNumel(name, 'dy', args.dy, n);
  checkNumel(name, 'dx', args.dx, n);
  checkDistinct(name, { dx: args.dx }, { x: args.x, dy: args.dy });
  return createDispatch(gpu, {
    family: shaders.gelu, entry: 'gelu_backward', label: name, params: { n },
    tensors: { x: args.x, dy: args.dy, dx: args.dx }, workgroups: grid1d(gpu, ceilDiv(n, 256)),
  });
}
