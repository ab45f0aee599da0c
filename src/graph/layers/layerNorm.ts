// nn.LayerNorm over the last dimension: y = (x - mean) / sqrt(var + eps) * gamma + beta, with
// gamma and beta at `<name>.weight` and `<name>.bias`; stats [rows, 2] (mean, rstd) are kept for
// the backward pass. Backward: dX (+)= ..., dgamma and dbeta accumulate.
import type { Tensor } from '../../gpu/tensor';
import { layerNorm, layerNormBackward as layerNormBackwardKernel } from '../../kernels/layernorm';
import type { PlanBuilder } from '../plan';

export function layerNormForward(b: PlanBuilder, name: string, a: { x: Tensor; y: Tensor; stats: Tensor }, eps: number): void {
  b.add(layerNorm(b.gpu, { x: a.x, gamma: b.param(`${name}.weight`), beta: b.param(`${name}.bias`), y: a.y, stats: a.stats, eps, label: name }));
}

/** d(x) into `dx` (added to it with `accumulateDx`); gradients flow through a norm only where it trains. */
export function layerNormBackward(b: PlanBuilder, name: string, a: { x: Tensor; stats: Tensor; dy: Tensor; dx: Tensor; accumulateDx?: boolean }, eps: number): void {
  const dgamma = b.grad(`${name}.weight`);
  const dbeta = b.grad(`${name}.bias`);
  if (!dgamma || !dbeta) throw new Error(`training: ${name} is frozen but gradients flow through it`);
  b.add(layerNormBackwardKernel(b.gpu, {
    x: a.x, gamma: b.param(`${name}.weight`), stats: a.stats, dy: a.dy, dx: a.dx, dgamma, dbeta, eps,
    accumulate: a.accumulateDx ?? false, accumulateParams: true, label: `${name} backward`,
  }));
}
