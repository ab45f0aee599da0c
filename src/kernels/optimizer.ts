// AdamW and the global gradient norm (shaders/optimizer.wgsl).
import type { Gpu } from '../gpu/device';
import { ceilDiv, createDispatch, grid1d, type Dispatch } from '../gpu/dispatch';
import { numel, placeholder, type Tensor } from '../gpu/tensor';
import { checkDistinct, checkNumel, checkShape, checkTensor, fail } from './check';
import { shaders } from './shaders';

export const GRAD_NORM_PARTIALS = 256;

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** 0 for tensors exempt from decay (norms, biases, position embedding, tokens). */
  weightDecay: number;
  /** Clip the global gradient norm to this; needs `sumsq` from `gradNorm`. */
  maxNorm?: number;
}

/** Uniform values for one step; `step` counts from 1. Feed to Dispatch.setParams when lr or step change. */
export function adamwParams(n: number, h: AdamWHyper, step: number): Record<string, number> {
  if (!(step >= 1) || !Number.isInteger(step)) throw new Error(`adamw: step must be an integer >= 1, got ${step}`);
  return {
    n, lr: h.lr, beta1: h.beta1, beta2: h.beta2, eps: h.eps, weight_decay: h.weightDecay,
    bias_correction1: 1 - h.beta1 ** step, bias_correction2: 1 - h.beta2 ** step, max_norm: h.maxNorm ?? 0,
  };
}

export interface AdamWArgs { param: Tensor; grad: Tensor; m: Tensor; v: Tensor; sumsq?: Tensor; hyper: AdamWHyper; step: number; label?: string }

export async function adamw(gpu: Gpu, args: AdamWArgs): Promise<Dispatch> {
  const name = args.label ?? 'adamw';
  checkTensor(gpu, name, 'param', args.param);
  const n = numel(args.param.shape);
  for (const k of ['grad', 'm', 'v'] as const) checkNumel(name, k, args[k], n);
  const h = args.hyper;
  if (!(h.lr >= 0) || !(h.beta1 >= 0 && h.beta1 < 1) || !(h.beta2 >= 0 && h.beta2 < 1) || !(h.eps > 0) || !(h.weightDecay >= 0)) {
    fail(name, `hyperparameters out of range: ${JSON.stringify(h)}`);
  }
  const clip = h.maxNorm !== undefined;
  if (clip && !args.sumsq) fail(name, 'maxNorm needs sumsq (the global gradient sum of squares)');
  if (clip && !(h.maxNorm! > 0)) fail(name, `maxNorm must be positive, got ${h.maxNorm}`);
  if (args.sumsq) checkShape(name, 'sumsq', args.sumsq, [1]);
  checkDistinct(name, { param: args.param, m: args.m, v: args.v }, { grad: args.grad, sumsq: args.sumsq });
  return createDispatch(gpu, {
    family: shaders.optimizer, entry: 'adamw_step', label: name,
    overrides: { CLIP: clip },
    params: adamwParams(n, h, args.step),
    tensors: { param: args.param, grad: args.grad, m: args.m, v: args.v, sumsq: args.sumsq ?? placeholder(gpu, 'write') },
    workgroups: grid1d(gpu, ceilDiv(n, 256)),
  });
}

/** sumsq[0] = sum of grad^2 over all elements, in two dispatches through `partials` [256]. */
export async function gradNorm(gpu: Gpu, args: { grad: Tensor; partials: Tensor; sumsq: Tensor; label?: string }): Promise<Dispatch[]> {
  const name = args.label ?? 'grad norm';
  checkTensor(gpu, name, 'grad', args.grad);
  checkShape(name, 'partials', args.partials, [GRAD_NORM_PARTIALS]);
  checkShape(name, 'sumsq', args.sumsq, [1]);
  checkDistinct(name, { partials: args.partials, sumsq: args.sumsq }, { grad: args.grad });
  const family = shaders.optimizer;
  return Promise.all([
    createDispatch(gpu, {
      family, entry: 'sum_squares_partial', label: `${name} partial`, params: adamwParams(numel(args.grad.shape), { lr: 0, beta1: 0, beta2: 0, eps: 1, weightDecay: 0 }, 1),
      tensors: { grad: args.grad, partials: args.partials }, workgroups: [GRAD_NORM_PARTIALS, 1, 1],
    }),
    createDispatch(gpu, {
      family, entry: 'sum_squares_final', label: `${name} final`,
      tensors: { partials: args.partials, sumsq: args.sumsq }, workgroups: [1, 1, 1],
    }),
  ]);
}
