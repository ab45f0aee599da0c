// LayerNorm over the last dimension (shaders/layernorm.wgsl).
//   x, y, dy, dx [..., D]   gamma, beta, dgamma, dbeta [D]   stats [rows, 2] saved for backward
import type { Gpu } from '../gpu/device';
import { ceilDiv, createDispatch, grid1d, type Dispatch } from '../gpu/dispatch';
import { numel, type Tensor } from '../gpu/tensor';
import { checkDistinct, checkShape, checkTensor, fail } from './check';
import { shaders } from './shaders';

function rowsOf(gpu: Gpu, name: string, x: Tensor, eps: number): { rows: number; D: number } {
  checkTensor(gpu, name, 'x', x);
  if (!(eps > 0)) fail(name, `eps must be positive, got ${eps}`);
  const D = x.shape[x.shape.length - 1]!;
  return { rows: numel(x.shape) / D, D };
}

/** 'workgroup': a workgroup per row (GPUs); 'rows': a thread per row (CPU adapters). */
export type LayerNormKernel = 'workgroup' | 'rows';

/** Entry point and grid for a per-row kernel on this adapter (the matmul rule: software gets rows). */
function rowKernel(gpu: Gpu, base: string, rows: number, kernel?: LayerNormKernel): { entry: string; workgroups: [number, number, number] } {
  const k = kernel ?? (gpu.isSoftware ? 'rows' : 'workgroup');
  return k === 'rows' ? { entry: `${base}_rows`, workgroups: grid1d(gpu, ceilDiv(rows, 64)) } : { entry: base, workgroups: grid1d(gpu, rows) };
}

export interface LayerNormArgs { x: Tensor; gamma: Tensor; beta: Tensor; y: Tensor; stats: Tensor; eps: number; kernel?: LayerNormKernel; label?: string }

export async function layerNorm(gpu: Gpu, args: LayerNormArgs): Promise<Dispatch> {
  const name = args.label ?? 'layernorm';
  const { rows, D } = rowsOf(gpu, name, args.x, args.eps);
  checkShape(name, 'gamma', args.gamma, [D]);
  checkShape(name, 'beta', args.beta, [D]);
  checkShape(name, 'y', args.y, args.x.shape);
  checkShape(name, 'stats', args.stats, [rows, 2]);
  checkDistinct(name, { y: args.y, stats: args.stats }, { x: args.x, gamma: args.gamma, beta: args.beta });
  return createDispatch(gpu, {
    family: shaders.layernorm, label: name, ...rowKernel(gpu, 'layernorm_forward', rows, args.kernel),
    params: { rows, D, eps: args.eps },
    tensors: { x: args.x, gamma: args.gamma, beta: args.beta, y: args.y, stats: args.stats },
  });
}

export interface LayerNormBackwardArgs {
  x: Tensor; gamma: Tensor; stats: Tensor; dy: Tensor;
  dx: Tensor; dgamma: Tensor; dbeta: Tensor;
  eps: number;
  /** Add into dx instead of overwriting it. */
  accumulate?: boolean;
  /** Add into dgamma and dbeta instead of overwriting them; defaults to `accumulate`. */
  accumulateParams?: boolean;
  kernel?: LayerNormKernel;
  label?: string;
}

/** Two dispatches: dx (one workgroup per row), then dgamma and dbeta (one thread per column). */
export async function layerNormBackward(gpu: Gpu, args: LayerNormBackwardArgs): Promise<Dispatch[]> {
  const name = args.label ?? 'layernorm backward';
  const { rows, D } = rowsOf(gpu, name, args.x, args.eps);
  checkShape(name, 'gamma', args.gamma, [D]);
  checkShape(name, 'stats', args.stats, [rows, 2]);
  checkShape(name, 'dy', args.dy, args.x.shape);
  checkShape(name, 'dx', args.dx, args.x.shape);
  checkShape(name, 'dgamma', args.dgamma, [D]);
  checkShape(name, 'dbeta', args.dbeta, [D]);
  checkDistinct(name, { dx: args.dx, dgamma: args.dgamma, dbeta: args.dbeta }, { x: args.x, gamma: args.gamma, stats: args.stats, dy: args.dy });
  const common = { family: shaders.layernorm, params: { rows, D, eps: args.eps } };
  return Promise.all([
    createDispatch(gpu, {
      ...common, ...rowKernel(gpu, 'layernorm_backward_dx', rows, args.kernel), label: `${name} dx`, overrides: { ACCUMULATE: args.accumulate ?? false },
      tensors: { x: args.x, gamma: args.gamma, stats: args.stats, dy: args.dy, dx: args.dx },
    }),
    createDispatch(gpu, {
      ...common, entry: 'layernorm_backward_params', label: `${name} dgamma dbeta`, overrides: { ACCUMULATE: args.accumulateParams ?? args.accumulate ?? false },
      tensors: { x: args.x, stats: args.stats, dy: args.dy, dgamma: args.dgamma, dbeta: args.dbeta },
      workgroups: grid1d(gpu, ceilDiv(D, 64)),
    }),
  ]);
}
