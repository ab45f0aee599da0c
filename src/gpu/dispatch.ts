// A Dispatch is one planned compute dispatch: pipeline, bind group, uniform buffer and grid, all
// created once. Running a model re-encodes planned dispatches; nothing is allocated per run.
import { createBuffer } from './buffers';
import type { Gpu } from './device';
import { packParams, reflectParams, type ParamField } from './params';
import type { Overrides } from './pipelines';
import { byteLength, type Tensor } from './tensor';

export interface ShaderFamily {
  readonly name: string;
  readonly code: string;
  readonly params: readonly ParamField[];
  /** Binding name -> binding index, reflected from the WGSL declarations. */
  readonly bindings: ReadonlyMap<string, number>;
}

export function shaderFamily(name: string, code: string): ShaderFamily {
  const bindings = new Map<string, number>();
  for (const m of code.matchAll(/@binding\((\d+)\)\s*var(?:<[^>]*>)?\s+(\w+)/g)) bindings.set(m[2]!, Number(m[1]));
  return { name, code, params: code.includes('struct Params') ? reflectParams(code) : [], bindings };
}

export class Dispatch {
  constructor(
    readonly label: string,
    readonly pipeline: GPUComputePipeline,
    readonly bindGroup: GPUBindGroup,
    readonly workgroups: readonly [number, number, number],
    private readonly uniform: GPUBuffer | null,
    private readonly family: ShaderFamily,
    private readonly device: GPUDevice,
  ) {}

  /** Rewrites the uniforms (e.g. an optimizer's step count) without re-planning. */
  setParams(values: Record<string, number>): void {
    if (!this.uniform) throw new Error(`${this.label}: this dispatch has no parameters`);
    this.device.queue.writeBuffer(this.uniform, 0, packParams(this.family.params, values, this.label));
  }

  encode(pass: GPUComputePassEncoder): void {
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, this.bindGroup);
    pass.dispatchWorkgroups(...this.workgroups);
  }

  destroy(): void {
    this.uniform?.destroy();
  }
}

export interface DispatchSpec {
  family: ShaderFamily;
  entry: string;
  label: string;
  overrides?: Overrides;
  params?: Record<string, number>;
  tensors: Record<string, Tensor>;
  workgroups: readonly [number, number, number];
}

export async function createDispatch(gpu: Gpu, spec: DispatchSpec): Promise<Dispatch> {
  const { family, entry } = spec;
  const maxGroups = gpu.device.limits.maxComputeWorkgroupsPerDimension;
  if (spec.workgroups.some((n) => n > maxGroups)) {
    throw new Error(`${spec.label}: grid [${spec.workgroups.join(', ')}] exceeds maxComputeWorkgroupsPerDimension (${maxGroups})`);
  }
  const pipeline = await gpu.pipelines.get(family.name, family.code, entry, spec.overrides);
  const entries: GPUBindGroupEntry[] = [];
  let uniform: GPUBuffer | null = null;
  if (spec.params) {
    const bytes = packParams(family.params, spec.params, spec.label);
    uniform = createBuffer(gpu, { label: `${spec.label} params`, size: bytes.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    gpu.device.queue.writeBuffer(uniform, 0, bytes);
    entries.push({ binding: bindingOf(family, 'params', spec.label), resource: { buffer: uniform } });
  }
  for (const [name, t] of Object.entries(spec.tensors)) {
    entries.push({ binding: bindingOf(family, name, spec.label), resource: { buffer: t.buffer, offset: t.offset, size: Math.max(4, byteLength(t)) } });
  }
  const bindGroup = gpu.device.createBindGroup({ label: spec.label, layout: pipeline.getBindGroupLayout(0), entries });
  return new Dispatch(spec.label, pipeline, bindGroup, spec.workgroups, uniform, family, gpu.device);
}

function bindingOf(family: ShaderFamily, name: string, label: string): number {
  const b = family.bindings.get(name);
  if (b === undefined) throw new Error(`${label}: shader ${family.name} has no binding "${name}"`);
  return b;
}

/**
 * Encodes dispatches into one compute pass of one command buffer and submits it; `before` may add
 * commands ahead of the pass (clearing gradients) to the same command buffer.
 */
export function submit(gpu: Gpu, dispatches: readonly Dispatch[], label = 'dispatches', before?: (encoder: GPUCommandEncoder) => void): void {
  const encoder = gpu.device.createCommandEncoder({ label });
  before?.(encoder);
  const pass = encoder.beginComputePass({ label });
  for (const d of dispatches) d.encode(pass);
  pass.end();
  gpu.device.queue.submit([encoder.finish()]);
}

/** Splits a 1-D problem of `count` workgroups over x and y so neither exceeds the device limit. */
export function grid1d(gpu: Gpu, count: number): [number, number, number] {
  const max = gpu.device.limits.maxComputeWorkgroupsPerDimension;
  if (count <= max) return [Math.max(1, count), 1, 1];
  const y = Math.ceil(count / max);
  return [Math.ceil(count / y), y, 1];
}

export function ceilDiv(a: number, b: number): number {
  return Math.ceil(a / b);
}
