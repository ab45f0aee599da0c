// The plan builder: what a layer planning its part of a pass talks to. It hands out activation
// tensors (each in a buffer of its own, since WebGPU tracks read/write usage per buffer), lets
// layers that keep nothing for a backward pass share one set of scratch tensors, resolves
// parameters and their gradients by name, and collects the dispatches. Everything is created at
// planning time; a run only encodes what was planned. Planning runs inside GPU error scopes: an
// allocation or a bind group the GPU refuses fails the plan with a GpuError naming it and its size.
import type { Gpu } from '../gpu/device';
import type { Dispatch } from '../gpu/dispatch';
import { openErrorScopes } from '../gpu/errors';
import { formatBytes } from '../limits';
import { createTensor, type Tensor } from '../gpu/tensor';

/** Where a plan's parameters live: a model, or a model and a head planned beside it (a dense head). */
export interface ParamStore {
  readonly gpu: Gpu;
  readonly params: ReadonlyMap<string, Tensor>;
  param(name: string): Tensor;
}

/**
 * A typed key for scratch tensors shared between layers: every layer asking with the same slot and
 * the same shape key gets the same object. The slot says which kind of layer shares; the key says
 * which shapes (so blocks of different widths, as in a hierarchical model, get sets of their own).
 */
export interface Slot<T> { readonly name: string; readonly _type?: T }
export function slot<T>(name: string): Slot<T> {
  return { name };
}

export class PlanBuilder {
  private readonly work: Promise<Dispatch | Dispatch[]>[] = [];
  private readonly buffers: GPUBuffer[] = [];
  private readonly sharedSets = new Map<Slot<unknown>, Map<string, unknown>>();
  /** GPU bytes of the tensors created so far. */
  bytes = 0;
  private largest = { name: '', bytes: 0 };
  private readonly closeScopes: ReturnType<typeof openErrorScopes>;
  /**
   * Gradients of the trainable parameters, by name; set by the training plan before it plans the
   * backward pass. A parameter without one is frozen: nothing is accumulated for it.
   */
  grads: ReadonlyMap<string, Tensor> = new Map();

  /** Opens the plan's error scopes: `finish` or `abandon` closes them. */
  constructor(readonly model: ParamStore, readonly label: string) {
    this.closeScopes = openErrorScopes(model.gpu.device);
  }

  get gpu(): Gpu {
    return this.model.gpu;
  }

  param(name: string): Tensor {
    return this.model.param(name);
  }

  has(name: string): boolean {
    return this.model.params.has(name);
  }

  grad(name: string): Tensor | undefined {
    return this.grads.get(name);
  }

  /** A tensor of its own, destroyed with the plan. */
  tensor(shape: readonly number[], name: string): Tensor {
    const t = createTensor(this.gpu, shape, `${this.label} ${name}`);
    this.buffers.push(t.buffer);
    this.bytes += t.buffer.size;
    if (t.buffer.size > this.largest.bytes) this.largest = { name, bytes: t.buffer.size };
    return t;
  }

  /** The set `make` creates for the first caller with this slot and key; later callers share it. */
  shared<T>(s: Slot<T>, key: string, make: () => T): T {
    let sets = this.sharedSets.get(s);
    if (!sets) this.sharedSets.set(s, (sets = new Map()));
    if (!sets.has(key)) sets.set(key, make());
    return sets.get(key) as T;
  }

  add(...dispatches: Promise<Dispatch | Dispatch[]>[]): void {
    this.work.push(...dispatches);
  }

  /** Every dispatch planned so far, in order (pipelines compile concurrently). */
  async dispatches(): Promise<Dispatch[]> {
    return (await Promise.all(this.work)).flat();
  }

  /**
   * Every dispatch planned, once the plan is complete: closes the error scopes and throws what they
   * caught, naming the plan and its size. On any throw while planning, call `abandon` instead.
   */
  async finish(): Promise<Dispatch[]> {
    const dispatches = await this.dispatches();
    const error = await this.closeScopes(() => `planning ${this.label} (${formatBytes(this.bytes)} in ${this.buffers.length} tensors, the largest ${this.largest.name} of ${formatBytes(this.largest.bytes)})`);
    if (error) {
      for (const d of dispatches) d.destroy();
      throw error;
    }
    return dispatches;
  }

  /** Destroys the tensors; dispatches are destroyed by whoever holds them. */
  destroyTensors(): void {
    for (const b of this.buffers) b.destroy();
    this.buffers.length = 0;
  }

  /**
   * After a failed plan: waits for every dispatch queued so far (some may have failed too) and
   * destroys those that were made, then the tensors, so nothing is left on the GPU.
   */
  async abandon(): Promise<void> {
    const settled = await Promise.allSettled(this.work);
    for (const s of settled) if (s.status === 'fulfilled') for (const d of [s.value].flat()) d.destroy();
    this.work.length = 0;
    this.destroyTensors();
    await this.closeScopes(() => '');
  }
}
