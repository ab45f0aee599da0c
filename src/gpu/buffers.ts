// Every GPUBuffer the engine makes comes from createBuffer, which counts it on its Gpu until it is
// destroyed: the engine's own account of the GPU memory it holds (Engine.memory), exact to the
// byte, so a leak shows as a count that does not come back (see tests/soak.gpu.test.ts).
import type { Gpu } from './device';

/** Buffers created and not yet destroyed, and their bytes. */
export interface GpuMemory {
  bytes: number;
  buffers: number;
}

export function createBuffer(gpu: Gpu, descriptor: GPUBufferDescriptor): GPUBuffer {
  const buffer = gpu.device.createBuffer(descriptor);
  const memory = gpu.memory;
  const size = buffer.size;
  memory.bytes += size;
  memory.buffers++;
  // Per buffer, so every existing `buffer.destroy()` is counted; a second destroy counts nothing.
  const destroy = buffer.destroy.bind(buffer);
  let live = true;
  buffer.destroy = () => {
    if (live) {
      live = false;
      memory.bytes -= size;
      memory.buffers--;
    }
    destroy();
  };
  return buffer;
}
