// nn.Linear: y [rows, out] = x [rows, in] W^T + b, W [out, in] (timm's `<name>.weight`, `<name>.bias`).
// Backward: dX (+)= dY W; dW += dY^T X; db += column sums of dY. Parameter gradients always
// accumulate (micro-batches add into one arena that the step clears); a frozen W gets none.
import type { Tensor } from '../../gpu/tensor';
import { numel } from '../../gpu/tensor';
import { view } from '../../kernels/check';
import { matmul, type Epilogue } from '../../kernels/matmul';
import { sumRows } from '../../kernels/reduce';
import type { PlanBuilder } from '../plan';

/** `t` as rows of `width` values. */
export const rows = (t: Tensor, width: number): Tensor => view(t, [numel(t.shape) / width, width]);

/** Widths of a linear layer. */
export interface Width { in: number; out: number }

/** y = x W^T + b, with GELU fused into the epilogue when `gelu` (inference: the pre-activation is not kept). */
export function linearForward(b: PlanBuilder, name: string, x: Tensor, y: Tensor, width: Width, options: { gelu?: boolean; label?: string } = {}): void {
  const bias = b.has(`${name}.bias`) ? b.param(`${name}.bias`) : undefined;
  const epilogue: Epilogue = options.gelu ? 'bias_gelu' : bias ? 'bias' : 'none';
  if (options.gelu && !bias) throw new Error(`${name}: the fused GELU epilogue needs a bias`);
  b.add(matmul(b.gpu, { a: rows(x, width.in), b: b.param(`${name}.weight`), bias, c: rows(y, width.out), transB: true, epilogue, label: options.label ?? name }));
}

/**
 * Gradients of y = x W^T + b: dW and db where they train, and dX into `dx` when given (added to
 * what `dx` holds with `accumulateDx`).
 */
export function linearBackward(b: PlanBuilder, name: string, a: { x: Tensor; dy: Tensor; dx?: Tensor; accumulateDx?: boolean }, width: Width): void {
  if (a.dx) b.add(matmul(b.gpu, { a: rows(a.dy, width.out), b: b.param(`${name}.weight`), c: rows(a.dx, width.in), accumulate: a.accumulateDx ?? false, label: `${name} dX` }));
  const dw = b.grad(`${name}.weight`);
  if (dw) b.add(matmul(b.gpu, { a: rows(a.dy, width.out), b: rows(a.x, width.in), c: dw, transA: true, accumulate: true, label: `${name} dW` }));
  const db = b.grad(`${name}.bias`);
  if (db) b.add(sumRows(b.gpu, { x: a.dy, out: db, rows: numel(a.dy.shape) / width.out, accumulate: true, label: `${name} db` }));
}
