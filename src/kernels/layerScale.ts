// LayerScale (shaders/layerscale.wgsl): out = x + gamma * f fused into the residual add, and its
// backward: d f = gamma * d out, dgamma (+)= column sums of d out * f. Tensors are [..., D] viewed
// as rows of D; gamma [D].
import type { Gpu } from '../gpu/device';
import { ceilDiv, createDispatch, grid1d, type Dispatch } from '../gpu/dispatch';
import { numel, type Tensor } from '../gpu/tensor';
import { checkDistinct, checkNumel, checkTensor, fail } from './check';
import { shaders } from './shaders';

function widths(gpu: Gpu, name: string, like: Tensor, gamma: Tensor): { n: number; D: number } {
  checkTensor(gpu, name, 'gamma', gamma);
  checkTensor(gpu, name, 'input', like);
  const D = numel(gamma.shape);
  const n = numel(like.shape);
  if (D === 0 || n % D !== 0) fail(name, `${n} elements are not rows of gamma's ${D}`);
  return { n, D };
}

/** out = x + gamma * f (a residual branch f joining the skip path x). */
export async function scaleAdd(gpu: Gpu, args: { x: Tensor; f: Tensor; gamma: Tensor; out: Tensor; label?: string }): Promise<Dispatch> {
  const name = args.label ?? 'layer scale add';
  const { n, D } = widths(gpu, name, args.f, args.gamma);
  checkNumel(name, 'x', args.x, n);
  checkNumel(name, 'out', args.out, n);
  checkDistinct(name, { out: args.out }, { x: args.x, f: args.f, gamma: args.gamma });
  return createDispatch(gpu, {
    family: shaders.layerScale, entry: 'scale_add', label: name, params: { n, D },
    tensors: { x: args.x, f: args.f, gamma: args.gamma, out: args.out }, workgroups: grid1d(gpu, ceilDiv(n, 256)),
  });
}

/**
 * The backward of out = x + gamma * f: df = gamma * dout into `df`, and dgamma += column sums of
 * dout * f where gamma trains (d x is dout itself: the residual stream passes through).
 */
export async function scaleAddBackward(gpu: Gpu, args: { dout: Tensor; f: Tensor; gamma: Tensor; df: Tensor; dgamma?: Tensor; label?: string }): Promise<Dispatch[]> {
  const name = args.label ?? 'layer scale backward';
  const { n, D } = widths(gpu, name, args.dout, args.gamma);
  checkNumel(name, 'f', args.f, n);
  checkNumel(name, 'df', args.df, n);
  checkDistinct(name, { df: args.df }, { dout: args.dout, gamma: args.gamma });
  const work = [createDispatch(gpu, {
    family: shaders.layerScale, entry: 'scale', label: `${name} df`, params: { n, D },
    tensors: { x: args.dout, gamma: args.gamma, out: args.df }, workgroups: grid1d(gpu, ceilDiv(n, 256)),
  })];
  if (args.dgamma) {
    checkNumel(name, 'dgamma', args.dgamma, D);
    checkDistinct(name, { dgamma: args.dgamma }, { dout: args.dout, f: args.f });
    work.push(createDispatch(gpu, {
      family: shaders.layerScale, entry: 'scale_grad', label: `${name} dgamma`, params: { n, D }, overrides: { ACCUMULATE: true },
      tensors: { x: args.dout, f: args.f, out: args.dgamma }, workgroups: grid1d(gpu, ceilDiv(D, 64)),
    }));
  }
  return Promise.all(work);
}
