// AdamW over a model's trainable parameters: moment arenas beside the parameters, one planned
// dispatch per tensor (weight decay per tensor: none on norms, biases, position embedding and
// tokens), and the global gradient norm for clipping. A non-finite gradient anywhere skips the
// whole update on the GPU, so the last good weights survive without a readback in the step.
import type { Gpu } from '../gpu/device';
import { submit, type Dispatch } from '../gpu/dispatch';
import { createArena, createTensor, readTensor, readTensors, writeTensor, type Tensor } from '../gpu/tensor';
import { adamw, adamwParams, gradNorm, GRAD_NORM_PARTIALS, type AdamWHyper } from '../kernels/optimizer';

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Global gradient-norm clip; Infinity disables clipping (non-finite steps are still skipped). */
  maxNorm: number;
}

export const ADAMW_DEFAULTS: AdamWConfig = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05, maxNorm: 1 };

export class AdamW {
  /** Optimizer steps taken (the bias correction uses step + 1 next). */
  step = 0;
  private constructor(
    private readonly gpu: Gpu,
    readonly config: AdamWConfig,
    readonly names: readonly string[],
    readonly m: ReadonlyMap<string, Tensor>,
    readonly v: ReadonlyMap<string, Tensor>,
    private readonly updates: { name: string; dispatch: Dispatch; n: number; hyper: AdamWHyper }[],
    private readonly normDispatches: Dispatch[],
    readonly sumsq: Tensor,
    private readonly buffers: GPUBuffer[],
  ) {}

  /**
   * For the parameters `grads` names, looked up in `params` (a model, a dense head); `isNoDecay`
   * says which take no weight decay (a family's isNoDecay).
   */
  static async create(gpu: Gpu, params: { param(name: string): Tensor }, isNoDecay: (name: string) => boolean, grads: ReadonlyMap<string, Tensor>, gradsFlat: Tensor, config: AdamWConfig = ADAMW_DEFAULTS): Promise<AdamW> {
    const names = [...grads.keys()];
    const spec = Object.fromEntries(names.map((n) => [n, params.param(n).shape]));
    const m = createArena(gpu, 'adam m', spec);
    const v = createArena(gpu, 'adam v', spec);
    const sumsq = createTensor(gpu, [1], 'grad sumsq');
    const partials = createTensor(gpu, [GRAD_NORM_PARTIALS], 'grad norm partials');
    const maxNorm = Number.isFinite(config.maxNorm) ? config.maxNorm : 3e38;
    const updates = await Promise.all(names.map(async (name) => {
      const hyper: AdamWHyper = { lr: 0, beta1: config.beta1, beta2: config.beta2, eps: config.eps, weightDecay: isNoDecay(name) ? 0 : config.weightDecay, maxNorm };
      const param = params.param(name);
      const dispatch = await adamw(gpu, { param, grad: grads.get(name)!, m: m.tensors[name]!, v: v.tensors[name]!, sumsq, hyper, step: 1, label: `adamw ${name}` });
      return { name, dispatch, n: param.shape.reduce((a, b) => a * b, 1), hyper };
    }));
    const normDispatches = await gradNorm(gpu, { grad: gradsFlat, partials, sumsq });
    return new AdamW(gpu, config, names, new Map(Object.entries(m.tensors)), new Map(Object.entries(v.tensors)), updates, normDispatches, sumsq,
      [...m.buffers, ...v.buffers, sumsq.buffer, partials.buffer]);
  }

  /** One update at learning rate `lr` from the gradients in place. */
  apply(lr: number): void {
    this.step++;
    for (const u of this.updates) u.dispatch.setParams(adamwParams(u.n, { ...u.hyper, lr }, this.step));
    submit(this.gpu, [...this.normDispatches, ...this.updates.map((u) => u.dispatch)], 'adamw');
  }

  /** The global gradient norm of the last step (a readback: for logging, not the hot path). */
  async gradNorm(): Promise<number> {
    return Math.sqrt((await readTensor(this.gpu, this.sumsq))[0]!);
  }

  /** Moments for checkpoints, by `m.` / `v.` + parameter name. */
  async state(): Promise<Map<string, Float32Array>> {
    const keys = this.names.flatMap((n) => [`m.${n}`, `v.${n}`]);
    const values = await readTensors(this.gpu, this.names.flatMap((n) => [this.m.get(n)!, this.v.get(n)!]));
    return new Map(keys.map((k, i) => [k, values[i]!]));
  }

  restore(state: ReadonlyMap<string, Float32Array>, step: number): void {
    for (const n of this.names) {
      const m = state.get(`m.${n}`);
      const v = state.get(`v.${n}`);
      if (!m || !v) throw new Error(`checkpoint: optimizer state for ${n} is missing`);
      writeTensor(this.gpu, this.m.get(n)!, m);
      writeTensor(this.gpu, this.v.get(n)!, v);
    }
    this.step = step;
  }

  destroy(): void {
    for (const u of this.updates) u.dispatch.destroy();
    for (const d of this.normDispatches) d.destroy();
    for (const b of this.buffers) b.destroy();
  }
}
