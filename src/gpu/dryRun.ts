// A device that allocates nothing and records what would be: planning on it runs the real planners
// (every layer's tensors, every dispatch's bindings) in plain JavaScript, so a plan's sizes can be
// checked against any GPU's limits before anything is created on a real one, or without a GPU at
// all. Nothing runs on it: pipelines, bind groups and buffers are empty objects.
import { PipelineCache } from './pipelines';
import type { Gpu, MatmulVariant } from './device';

/** One buffer the plan would create, or one binding of a tensor into a dispatch. */
export interface Recorded { label: string; bytes: number }

export interface DryRunGpu extends Gpu {
  readonly buffers: Recorded[];
  readonly bindings: Recorded[];
}

/**
 * A recording device with `limits` (those the planners read to lay things out: maxBufferSize
 * chunks arenas, alignment places views). Without maxStorageBufferBindingSize, tensors of any
 * size are allowed, so a plan completes and every size it would need is recorded, to compare
 * with the limits afterwards; with it, the device refuses what a GPU with that limit would.
 */
export function dryRunGpu(
  limits: { maxBufferSize: number; minStorageBufferOffsetAlignment: number; maxComputeWorkgroupsPerDimension: number; maxStorageBufferBindingSize?: number },
  { isSoftware = false, matmulVariant = 'tiled' }: { isSoftware?: boolean; matmulVariant?: MatmulVariant } = {},
): DryRunGpu {
  const maxBinding = limits.maxStorageBufferBindingSize ?? Number.MAX_SAFE_INTEGER;
  const buffers: Recorded[] = [];
  const bindings: Recorded[] = [];
  const labels = new WeakMap<object, string>();
  const device = {
    label: 'dry run',
    limits: { ...limits, maxStorageBufferBindingSize: maxBinding },
    features: new Set<string>(),
    lost: new Promise(() => {}),
    queue: { writeBuffer() {}, submit() {} },
    createBuffer({ label = '', size }: GPUBufferDescriptor) {
      buffers.push({ label, bytes: size });
      // A readback (a planner resampling the position embedding reads it) gives zeros.
      const buffer = { label, size, destroy() {}, mapAsync: async () => {}, getMappedRange: () => new ArrayBuffer(size), unmap() {} };
      labels.set(buffer, label);
      return buffer;
    },
    createShaderModule: () => ({ getCompilationInfo: async () => ({ messages: [] }) }),
    createComputePipelineAsync: async () => ({ getBindGroupLayout: () => ({}) }),
    createBindGroup({ entries }: GPUBindGroupDescriptor) {
      for (const e of entries) {
        const { buffer, size } = e.resource as GPUBufferBinding;
        bindings.push({ label: labels.get(buffer) ?? '', bytes: size ?? buffer.size });
      }
      return {};
    },
    // Encoded (for readbacks), never run.
    createCommandEncoder: () => ({
      beginComputePass: () => ({ setPipeline() {}, setBindGroup() {}, dispatchWorkgroups() {}, end() {} }),
      clearBuffer() {}, copyBufferToBuffer() {}, finish: () => ({}),
    }),
    pushErrorScope() {},
    popErrorScope: async () => null,
  } as unknown as GPUDevice;
  return {
    device, adapterInfo: { vendor: '', architecture: '', device: '', description: 'dry run' } as GPUAdapterInfo,
    isSoftware, matmulVariant, pipelines: new PipelineCache(device), name: 'dry run',
    bufferLimits: { maxBufferSize: limits.maxBufferSize, maxStorageBufferBindingSize: maxBinding },
    maxBindingBytes: limits.maxStorageBufferBindingSize === undefined ? maxBinding : Math.min(maxBinding, limits.maxBufferSize), memory: { bytes: 0, buffers: 0 }, buffers, bindings,
  };
}
