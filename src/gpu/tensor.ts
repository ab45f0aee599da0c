// Tensors are f32 views into GPU buffers: (buffer, byte offset, shape), row-major. Many views can
// share one buffer (an arena), so a model's parameters or activations are one allocation each.
import { createBuffer } from './buffers';
import type { BufferLimits, Gpu } from './device';
import { formatBytes, formatCount } from '../limits';

export interface Tensor {
  readonly buffer: GPUBuffer;
  /** Byte offset into `buffer`; a multiple of minStorageBufferOffsetAlignment. */
  readonly offset: number;
  readonly shape: readonly number[];
  readonly label: string;
}

/** Usage of every tensor's buffer; a function, so importing this module needs no WebGPU globals. */
const storageUsage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function byteLength(t: Tensor): number {
  return numel(t.shape) * 4;
}

/** A tensor in a buffer of its own. */
export function createTensor(gpu: Gpu, shape: readonly number[], label: string, data?: Float32Array): Tensor {
  const bytes = numel(shape) * 4;
  checkBindable(gpu, bytes, label);
  const buffer = createBuffer(gpu, { label, size: Math.max(4, align(bytes, 4)), usage: storageUsage() });
  const t: Tensor = { buffer, offset: 0, shape: [...shape], label };
  if (data) writeTensor(gpu, t, data);
  return t;
}

export function writeTensor(gpu: Gpu, t: Tensor, data: Float32Array): void {
  if (data.length !== numel(t.shape)) {
    throw new Error(`write ${t.label}: ${data.length} values for shape [${t.shape.join(', ')}]`);
  }
  gpu.device.queue.writeBuffer(t.buffer, t.offset, data.buffer, data.byteOffset, data.byteLength);
}

/** Copies a tensor back to the CPU (see readTensors: read several at once). */
export async function readTensor(gpu: Gpu, t: Tensor): Promise<Float32Array> {
  return (await readTensors(gpu, [t]))[0]!;
}

/** Staging memory for one round of readTensors: few waits, without doubling a large model's footprint. */
const STAGING_BYTES = 64 << 20;

/**
 * Copies tensors back to the CPU, packed into staging buffers of up to `stagingBytes` (a larger
 * tensor gets one of its own), one submit and one wait per buffer, one buffer at a time: each
 * readback waits for the GPU, so reading a model's tensors one by one would wait once per tensor.
 * Work submitted by others between rounds may land in later rounds' values.
 */
export async function readTensors(gpu: Gpu, tensors: readonly Tensor[], stagingBytes = Math.min(STAGING_BYTES, gpu.device.limits.maxBufferSize)): Promise<Float32Array[]> {
  const rounds: { size: number; parts: { index: number; at: number; bytes: number }[] }[] = [];
  tensors.forEach((t, index) => {
    const bytes = byteLength(t);
    const size = align(Math.max(bytes, 4), 4);
    let last = rounds.at(-1);
    if (!last || last.size + size > stagingBytes) rounds.push((last = { size: 0, parts: [] }));
    last.parts.push({ index, at: last.size, bytes });
    last.size += size;
  });
  const out = new Array<Float32Array>(tensors.length);
  for (const round of rounds) {
    const staging = createBuffer(gpu, { label: 'readback', size: round.size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    try {
      const encoder = gpu.device.createCommandEncoder({ label: 'readback' });
      for (const { index, at, bytes } of round.parts) encoder.copyBufferToBuffer(tensors[index]!.buffer, tensors[index]!.offset, staging, at, align(bytes, 4));
      gpu.device.queue.submit([encoder.finish()]);
      await staging.mapAsync(GPUMapMode.READ);
      const mapped = staging.getMappedRange();
      for (const { index, at, bytes } of round.parts) out[index] = new Float32Array(mapped.slice(at, at + bytes));
    } finally {
      staging.destroy();
    }
  }
  return out;
}

export interface ArenaSpec { [name: string]: readonly number[] }

/**
 * Allocates named tensors in as few buffers as the device allows, each view aligned for binding.
 * Returns the views and the buffers (to destroy together). WebGPU tracks usage per buffer, not per
 * range: a dispatch may not write one view of an arena while reading another. Arenas therefore
 * suit tensors written only by dispatches that read nothing else of the same arena (parameters,
 * gradients, optimizer state); activations use `createTensors`.
 */
export function createArena<S extends ArenaSpec>(gpu: Gpu, label: string, spec: S): { tensors: { [K in keyof S]: Tensor }; buffers: GPUBuffer[]; bytes: number } {
  const alignment = gpu.device.limits.minStorageBufferOffsetAlignment;
  const maxBuffer = gpu.bufferLimits.maxBufferSize;
  const placed: { name: string; shape: readonly number[]; chunk: number; offset: number }[] = [];
  const chunkSizes = [0];
  for (const [name, shape] of Object.entries(spec)) {
    const bytes = numel(shape) * 4;
    // Also no larger than a buffer can be: a chunk holds at least its one tensor.
    checkBindable(gpu, bytes, `${label}.${name}`);
    let chunk = chunkSizes.length - 1;
    let offset = align(chunkSizes[chunk]!, alignment);
    if (offset + bytes > maxBuffer) {
      chunkSizes.push(0);
      chunk++;
      offset = 0;
    }
    chunkSizes[chunk] = offset + bytes;
    placed.push({ name, shape, chunk, offset });
  }
  const buffers = chunkSizes.map((size, i) =>
    createBuffer(gpu, { label: `${label}#${i}`, size: Math.max(4, align(size, 4)), usage: storageUsage() }),
  );
  const tensors = {} as { [K in keyof S]: Tensor };
  for (const p of placed) {
    (tensors as Record<string, Tensor>)[p.name] = { buffer: buffers[p.chunk]!, offset: p.offset, shape: [...p.shape], label: `${label}.${p.name}` };
  }
  return { tensors, buffers, bytes: chunkSizes.reduce((a, b) => a + b, 0) };
}

/** Named tensors, each in a buffer of its own. */
export function createTensors<S extends ArenaSpec>(gpu: Gpu, label: string, spec: S): { tensors: { [K in keyof S]: Tensor }; buffers: GPUBuffer[]; bytes: number } {
  const tensors = {} as { [K in keyof S]: Tensor };
  const buffers: GPUBuffer[] = [];
  let bytes = 0;
  for (const [name, shape] of Object.entries(spec)) {
    const t = createTensor(gpu, shape, `${label}.${name}`);
    (tensors as Record<string, Tensor>)[name] = t;
    buffers.push(t.buffer);
    bytes += t.buffer.size;
  }
  return { tensors, buffers, bytes };
}

export function align(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

function checkBindable(gpu: Gpu, bytes: number, label: string): void {
  if (bytes > gpu.maxBindingBytes) throw new Error(`${label}: ${formatBytes(bytes)} exceed ${bindingLimitName(gpu)}`);
}

/**
 * The limit on one tensor as a message names it (Gpu.maxBindingBytes: the smaller of the binding
 * and buffer limits): this GPU's, or the engine's lower cap (CreateGpuOptions.bufferLimits).
 */
export function bindingLimitName(gpu: Gpu): string {
  const { maxBufferSize, maxStorageBufferBindingSize } = gpu.bufferLimits;
  return limitName(gpu, maxBufferSize < maxStorageBufferBindingSize ? 'maxBufferSize' : 'maxStorageBufferBindingSize');
}

/** A buffer limit as messages name it, with its value: this GPU's, or the engine's lower cap. */
export function limitName(gpu: Gpu, limit: keyof BufferLimits): string {
  const value = gpu.bufferLimits[limit];
  return value < gpu.device.limits[limit] ? `the engine's ${limit} cap of ${formatCount(value)} bytes` : `this GPU's ${limit} of ${formatCount(value)} bytes`;
}

const placeholders = new WeakMap<GPUDevice, { read: Tensor; write: Tensor }>();

/**
 * A 4-byte tensor bound where a shader declares a binding that the chosen path never touches.
 * Read-only bindings may share one; a writable binding needs its own, since one buffer cannot be
 * bound writable and read-only in the same dispatch. Made outside createBuffer, so no Gpu counts
 * them: they are shared by every wrapper (engine) of the device and live as long as the device,
 * so counting them on whichever engine asked first would show as memory it never gives back.
 */
export function placeholder(gpu: Gpu, access: 'read' | 'write' = 'read'): Tensor {
  let p = placeholders.get(gpu.device);
  if (!p) {
    const make = (label: string): Tensor => ({ buffer: gpu.device.createBuffer({ label, size: 4, usage: storageUsage() }), offset: 0, shape: [1], label });
    p = { read: make('placeholder (read)'), write: make('placeholder (write)') };
    placeholders.set(gpu.device, p);
  }
  return p[access];
}
