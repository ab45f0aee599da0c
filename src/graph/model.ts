// A model on the GPU, whatever its family: its config, the family that knows its architecture, and
// its parameters, one arena with a view per tensor under the checkpoint (timm) name. This file and
// family.ts are the whole contract between the graph runner and the model families in src/models.
import type { Gpu } from '../gpu/device';
import { createArena, numel, readTensors, writeTensor, type Tensor } from '../gpu/tensor';
import type { ModelConfig, ModelFamily } from './family';

export interface HostTensor { shape: readonly number[]; data: Float32Array }
/** Weights on the CPU by parameter name. */
export type HostWeights = Map<string, HostTensor>;
/** Anything with a shape per name: host weights, a parsed checkpoint. */
export type Shapes = ReadonlyMap<string, { shape: readonly number[] }>;
/** Every parameter of a model, by name, in the order the family lists them. */
export type ParamShapes = [name: string, shape: number[]][];

/** Shapes grouped as ParameterGroups names them, for a family that lists its shapes by group. */
export interface GroupedShapes { stem: ParamShapes; blocks: ParamShapes[]; neck: ParamShapes; classifier: ParamShapes }

/** Every parameter in forward order: the stem, each block, the neck, the classifier. */
export function allShapes(g: GroupedShapes): ParamShapes {
  return [...g.stem, ...g.blocks.flat(), ...g.neck, ...g.classifier];
}

/** The groups' names (graph/family.ts ParameterGroups). */
export function groupNames(g: GroupedShapes): { stem: string[]; blocks: string[][]; neck: string[]; classifier: string[] } {
  const names = (shapes: ParamShapes) => shapes.map(([n]) => n);
  return { stem: names(g.stem), blocks: g.blocks.map(names), neck: names(g.neck), classifier: names(g.classifier) };
}

/** Every tensor the config needs, with its shape, and nothing else; errors name the tensors. */
export function checkWeights(shapes: ParamShapes, weights: Shapes): void {
  const problems: string[] = [];
  for (const [name, shape] of shapes) {
    const w = weights.get(name);
    if (!w) problems.push(`missing ${name} [${shape.join(', ')}]`);
    else if (w.shape.join() !== shape.join()) problems.push(`${name} has shape [${w.shape.join(', ')}], the config needs [${shape.join(', ')}]`);
  }
  const known = new Set(shapes.map(([n]) => n));
  const extra = [...weights.keys()].filter((n) => !known.has(n));
  if (extra.length) problems.push(`tensors the config has no place for: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ` and ${extra.length - 5} more` : ''}`);
  if (problems.length) throw new Error(`weights do not match the config: ${problems.slice(0, 6).join('; ')}${problems.length > 6 ? '; …' : ''}`);
}

/** Host bytes written to the GPU between waits while streaming a model in. */
const QUEUED_BYTES = 256 << 20;

export class Model<C extends ModelConfig = ModelConfig> {
  private constructor(
    readonly gpu: Gpu,
    readonly family: ModelFamily<C>,
    readonly config: C,
    readonly params: ReadonlyMap<string, Tensor>,
    private readonly buffers: GPUBuffer[],
    /** Bytes of GPU memory held by the parameters. */
    readonly bytes: number,
  ) {}

  /** Checks the config and every tensor against it, then uploads them all. */
  static create<C extends ModelConfig>(gpu: Gpu, family: ModelFamily<C>, config: C, weights: HostWeights): Model<C> {
    const model = Model.allocate(gpu, family, config, weights);
    for (const [name, t] of model.params) {
      const n = weights.get(name)!.data.length;
      if (n !== numel(t.shape)) {
        model.destroy();
        throw new Error(`weights: ${name} holds ${n} values for shape [${t.shape.join(', ')}]`);
      }
    }
    for (const [name, t] of model.params) writeTensor(gpu, t, weights.get(name)!.data);
    return model;
  }

  /**
   * Checks the config and every shape, allocates the parameters, then reads and uploads them one
   * at a time (a checkpoint streamed from its file: host memory holds one tensor, not the model).
   * `onTensor` hears of each upload. A failed read frees what was allocated.
   */
  static async stream<C extends ModelConfig>(
    gpu: Gpu, family: ModelFamily<C>, config: C,
    tensors: ReadonlyMap<string, { shape: readonly number[]; read(): Promise<Float32Array> }>,
    onTensor?: (name: string) => void,
  ): Promise<Model<C>> {
    const model = Model.allocate(gpu, family, config, tensors);
    try {
      let queued = 0;
      for (const [name, t] of model.params) {
        const data = await tensors.get(name)!.read();
        writeTensor(gpu, t, data);
        // writeBuffer copies into staging memory the GPU process holds until it runs: waiting
        // now and then bounds that staging to about QUEUED_BYTES, not the model's size.
        queued += data.byteLength;
        if (queued > QUEUED_BYTES) {
          await gpu.device.queue.onSubmittedWorkDone();
          queued = 0;
        }
        onTensor?.(name);
      }
      return model;
    } catch (e) {
      model.destroy();
      throw e;
    }
  }

  /**
   * The parameters' arena, after checking the config and every shape of `shapesOf` when given
   * (nothing written yet; graph/fit.ts plans on such a model, on a device that records sizes).
   */
  static allocate<C extends ModelConfig>(gpu: Gpu, family: ModelFamily<C>, config: C, shapesOf?: Shapes): Model<C> {
    family.validate(config);
    const shapes = family.parameterShapes(config);
    if (shapesOf) checkWeights(shapes, shapesOf);
    const arena = createArena(gpu, 'params', Object.fromEntries(shapes));
    return new Model(gpu, family, config, new Map(Object.entries(arena.tensors)), arena.buffers, arena.bytes);
  }

  param(name: string): Tensor {
    const t = this.params.get(name);
    if (!t) throw new Error(`model has no parameter ${name}`);
    return t;
  }

  /** Overwrites parameters from host weights (a checkpoint), after checking every shape. */
  upload(weights: HostWeights): void {
    checkWeights(this.family.parameterShapes(this.config), weights);
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
    for (const t of this.params.values()) n += numel(t.shape);
    return n;
  }

  destroy(): void {
    for (const b of this.buffers) b.destroy();
  }
}
