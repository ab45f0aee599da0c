// timm's Mlp: out [B, T, D] = fc2(GELU(fc1(x))), fc1 D -> M, fc2 M -> D, at `<name>.fc1`, `<name>.fc2`.
// A layer that keeps its activations for the backward pass keeps the pre-activation h apart from
// GELU(h); otherwise GELU is fused into fc1's epilogue and h is act.
import type { Tensor } from '../../gpu/tensor';
import { gelu, geluBackward } from '../../kernels/gelu';
import type { PlanBuilder } from '../plan';
import { slot } from '../plan';
import { linearBackward, linearForward } from './linear';

export interface MlpActivations {
  h: Tensor;    // [B, T, M] fc1 output (the same tensor as act where nothing is kept)
  act: Tensor;  // [B, T, M] GELU(h)
}

const SCRATCH = slot<Tensor>('mlp hidden');
const GRADS = slot<{ dact: Tensor; dh: Tensor }>('mlp gradients');

/** Plans out = fc2(GELU(fc1(x))) for x [B, T, D] into out [B, T, D]. */
export function mlpForward(b: PlanBuilder, name: string, x: Tensor, out: Tensor, hidden: number, keep: boolean): MlpActivations {
  const [B, T, D] = x.shape as [number, number, number];
  const shape = [B, T, hidden];
  const act = keep ? b.tensor(shape, `${name} act`) : b.shared(SCRATCH, shape.join(), () => b.tensor(shape, 'mlp act'));
  if (keep) {
    const h = b.tensor(shape, `${name} h`);
    linearForward(b, `${name}.fc1`, x, h, { in: D, out: hidden });
    b.add(gelu(b.gpu, { x: h, y: act, label: `${name} gelu` }));
    linearForward(b, `${name}.fc2`, act, out, { in: hidden, out: D });
    return { h, act };
  }
  linearForward(b, `${name}.fc1`, x, act, { in: D, out: hidden }, { gelu: true, label: `${name}.fc1+gelu` });
  linearForward(b, `${name}.fc2`, act, out, { in: hidden, out: D });
  return { h: act, act };
}

/** From d(out) to the parameter gradients and d(x) into `dx` (added with `accumulateDx`). */
export function mlpBackward(b: PlanBuilder, name: string, a: MlpActivations & { x: Tensor; dout: Tensor; dx: Tensor; accumulateDx?: boolean }): void {
  if (a.h === a.act) throw new Error(`${name}: planned without keeping its activations, so it has no backward pass`);
  const [B, T, M] = a.h.shape as [number, number, number];
  const D = a.x.shape[2]!;
  const key = [B, T, M].join();
  const s = b.shared(GRADS, key, () => ({ dact: b.tensor([B, T, M], 'd mlp act'), dh: b.tensor([B, T, M], 'd mlp h') }));
  linearBackward(b, `${name}.fc2`, { x: a.act, dy: a.dout, dx: s.dact }, { in: M, out: D });
  b.add(geluBackward(b.gpu, { x: a.h, dy: s.dact, dx: s.dh, label: `${name} gelu backward` }));
  linearBackward(b, `${name}.fc1`, { x: a.x, dy: s.dh, dx: a.dx, accumulateDx: a.accumulateDx }, { in: D, out: M });
}
