// Plans that fit the GPU's limits. A tensor is bound whole, so no activation may exceed the
// device's maxStorageBufferBindingSize (128 MiB by WebGPU's defaults, which many laptops and phones
// give): a ViT-B's MLP activation at batch 64 takes 155 MB. Every activation grows with the batch,
// so rather than split tensors we choose the batch: the largest whose plan fits, found by planning
// on a device that records sizes instead of allocating (gpu/dryRun.ts). Forward passes then run in
// chunks of that batch and training in micro-batches of it (gradient accumulation, exact); only
// where one image's plan does not fit is the work refused, naming the tensor and the limit.
import type { Gpu } from '../gpu/device';
import { dryRunGpu, type Recorded } from '../gpu/dryRun';
import { bindingLimitName, limitName } from '../gpu/tensor';
import { formatBytes } from '../limits';
import { Model } from './model';

/** What a plan is made by: anything planned on `model` at `batch` that can be destroyed. */
export type PlanAt = (model: Model, batch: number) => Promise<{ destroy(): void }>;

/** The limits a plan must fit: the Gpu's buffer limits (the device's, or the engine's caps) and the device's others. */
export interface PlanLimits {
  maxBindingBytes: number;
  maxBufferSize: number;
  minStorageBufferOffsetAlignment: number;
  maxComputeWorkgroupsPerDimension: number;
}

export function limitsOf(gpu: Gpu): PlanLimits {
  const { minStorageBufferOffsetAlignment, maxComputeWorkgroupsPerDimension } = gpu.device.limits;
  // Arenas chunk at the Gpu's maxBufferSize (gpu/tensor.ts createArena), so the dry run does too.
  return { maxBindingBytes: gpu.maxBindingBytes, maxBufferSize: gpu.bufferLimits.maxBufferSize, minStorageBufferOffsetAlignment, maxComputeWorkgroupsPerDimension };
}

export interface Footprint {
  /** The parameters' buffers. */
  model: Recorded[];
  /** The buffers the plan creates, and every binding its dispatches make (parameters' views included). */
  buffers: Recorded[];
  bindings: Recorded[];
}

/**
 * What `plan` would allocate and bind for `model`'s family and config at `batch` on a GPU with
 * `limits`, without allocating: it plans on a recording device. Errors the planners raise for
 * their own limits (a gradient arena over maxBufferSize) are thrown as they are.
 */
export async function planFootprint(model: Pick<Model, 'family' | 'config'> & { gpu?: Gpu }, limits: PlanLimits, batch: number, plan: PlanAt): Promise<Footprint> {
  const { maxBufferSize, minStorageBufferOffsetAlignment, maxComputeWorkgroupsPerDimension } = limits;
  const gpu = dryRunGpu({ maxBufferSize, minStorageBufferOffsetAlignment, maxComputeWorkgroupsPerDimension }, model.gpu);
  const dry = Model.allocate(gpu, model.family, model.config);
  const params = gpu.buffers.length;
  (await plan(dry, batch)).destroy();
  return { model: gpu.buffers.slice(0, params), buffers: gpu.buffers.slice(params), bindings: gpu.bindings };
}

/** The largest binding and the largest buffer of a footprint that exceed the limits, if any. */
export function overLimits(f: Footprint, limits: PlanLimits): { binding?: Recorded; buffer?: Recorded } {
  const largest = (records: Recorded[], limit: number) => records.filter((r) => r.bytes > limit).sort((a, b) => b.bytes - a.bytes)[0];
  return { binding: largest(f.bindings, limits.maxBindingBytes), buffer: largest([...f.model, ...f.buffers], limits.maxBufferSize) };
}

/**
 * The largest batch up to `batch` whose plan fits `gpu`'s limits (a binary search over dry plans:
 * what a plan needs grows with its batch). When one image's plan does not fit, throws naming the
 * tensor and the limit, `what` first ("DeiT-tiny at 1024 px").
 */
export async function largestFittingBatch(gpu: Gpu, model: Model, batch: number, plan: PlanAt, what: string): Promise<number> {
  const limits = limitsOf(gpu);
  const fits = async (B: number) => overLimits(await planFootprint(model, limits, B, plan), limits);
  if (!isOver(await fits(batch))) return batch;
  const one = await fits(1);
  if (one.binding) throw new Error(`${what}: ${tensorName(one.binding.label)} of one image takes ${formatBytes(one.binding.bytes)}, over ${bindingLimitName(gpu)}`);
  if (one.buffer) throw new Error(`${what}: ${tensorName(one.buffer.label)} of one image takes ${formatBytes(one.buffer.bytes)}, over ${limitName(gpu, 'maxBufferSize')}`);
  let [lo, hi] = [1, batch]; // lo fits, hi does not
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (isOver(await fits(mid))) hi = mid;
    else lo = mid;
  }
  return lo;
}

/**
 * The micro-batch a training batch runs as: the largest divisor of `batch` whose plan fits, so that
 * batch / micro micro-batches make exactly one batch (gradient accumulation is exact).
 */
export async function fittingMicroBatch(gpu: Gpu, model: Model, batch: number, plan: PlanAt, what: string): Promise<number> {
  let micro = await largestFittingBatch(gpu, model, batch, plan, what);
  while (batch % micro !== 0) micro--;
  return micro;
}

const isOver = (o: { binding?: Recorded; buffer?: Recorded }) => !!(o.binding || o.buffer);

/** A plan tensor's name without the plan's label (PlanBuilder labels tensors "B=1 S=224 <name>", "backward B=1 <name>"). */
function tensorName(label: string): string {
  return `"${label.replace(/^(?:backward )?B=\d+(?: S=\S+)? /, '')}"`;
}
