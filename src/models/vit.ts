// A ViT on the GPU: its config and its parameters, one arena with a view per timm tensor.
import type { Gpu } from '../gpu/device';
import { createArena, readTensors, writeTensor, type Tensor } from '../gpu/tensor';
import { validateConfig, type ViTConfig } from './config';
import { checkWeights, parameterShapes } from './params';

export interface HostTensor { shape: readonly number[]; data: Float32Array }
/** Weights on the CPU by timm name. */
export type HostWeights = Map<string, HostTensor>;

export class ViT {
  private constructor(
    readonly gpu: Gpu,
    readonly config: ViTConfig,
    readonly params: ReadonlyMap<string, Tensor>,
    private readonly buffers: GPUBuffer[],
    /** Bytes of GPU memory held by the parameters. */
    readonly bytes: number,
  ) {}

  /** Checks every tensor against the config, then uploads them all. */
  static create(gpu: Gpu, config: ViTConfig, weights: HostWeights): ViT {
    validateConfig(config);
    checkWeights(config, weights);
    const shapes = parameterShapes(config);
    for (const [name, shape] of shapes) {
      const n = weights.get(name)!.data.length;
      if (n !== shape.reduce((a, b) => a * b, 1)) throw new Error(`weights: ${name} holds ${n} values for shape [${shape.join(', ')}]`);
    }
    const arena = createArena(gpu, 'params', Object.fromEntries(shapes));
    for (const [name] of shapes) writeTensor(gpu, arena.tensors[name]!, weights.get(name)!.data);
    return new ViT(gpu, config, new Map(Object.entries(arena.tensors)), arena.buffers, arena.bytes);
  }

  /**
   * The first `depth` blocks (and the final norm and head, whose output is ignored) as a model of
   * their own, on the same GPU tensors: what a frozen prefix computes, so its last block's output
   * is the next block's input. Destroying it frees nothing; this model owns the tensors.
   */
  prefix(depth: number): ViT {
    if (!Number.isInteger(depth) || depth < 1 || depth > this.config.depth) throw new Error(`model prefix: depth must be an integer in [1, ${this.config.depth}], got ${depth}`);
    const config = { ...this.config, depth };
    const params = new Map(parameterShapes(config).map(([name]) => [name, this.param(name)]));
    return new ViT(this.gpu, config, params, [], 0);
  }

  param(name: string): Tensor {
    const t = this.params.get(name);
    if (!t) throw new Error(`model has no parameter ${name}`);
    return t;
  }

  /** Overwrites parameters from host weights (a checkpoint), after checking every shape. */
  upload(weights: HostWeights): void {
    checkWeights(this.config, weights);
    for (const [name, t] of this.params) writeTensor(this.gpu, t, weights.get(name)!.data);
  }

  /** Copies every parameter back to the CPU (for export and checkpoints). */
  async download(): Promise<HostWeights> {
    const entries = [...this.params];
    const data = await readTensors(this.gpu, entries.map(([, t]) => t));
    return new Map(entries.map(([name, t], i) => [name, { shape: t.shape, data: data[i]! }]));
  }

  get parameterCount(): number {
    let n = 0;
    for (const t of this.params.values()) n += t.shape.reduce((a, b) => a * b, 1);
    return n;
  }

  destroy(): void {
    for (const b of this.buffers) b.destroy();
  }
}
