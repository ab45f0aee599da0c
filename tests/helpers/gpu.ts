// GPU fixtures for kernel tests: one device per test file, outputs poisoned with NaN before each
// run (an element the kernel forgets to write then fails the comparison), and validation errors
// turned into test failures.
import { inject } from 'vitest';
import { createGpu, type Gpu } from '../../src/gpu/device';
import { submit, type Dispatch } from '../../src/gpu/dispatch';
import { createTensor, numel, readTensor, type Tensor } from '../../src/gpu/tensor';

let shared: Promise<Gpu> | undefined;

/** The test file's device: with the adapter's limits, or the WebGPU defaults in the `limits` project (vitest.config.ts). */
export function testGpu(): Promise<Gpu> {
  shared ??= createGpu({ limits: inject('gpuLimits') ?? 'adapter' });
  return shared;
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** Which limits test devices ask for; set by the `limits` project. */
    gpuLimits?: 'adapter' | 'default';
  }
}

export function upload(gpu: Gpu, data: Float32Array, shape: readonly number[], label = 'input'): Tensor {
  if (numel(shape) !== data.length) throw new Error(`upload ${label}: ${data.length} values for [${shape.join(', ')}]`);
  return createTensor(gpu, shape, label, data);
}

/** An output tensor filled with NaN. */
export function poisoned(gpu: Gpu, shape: readonly number[], label = 'output'): Tensor {
  return createTensor(gpu, shape, label, new Float32Array(numel(shape)).fill(Number.NaN));
}

/** Plans dispatches (from a promise or list), runs them, fails on any validation or OOM error. */
export async function run(gpu: Gpu, planned: Promise<Dispatch> | Promise<Dispatch[]> | Dispatch[]): Promise<void> {
  gpu.device.pushErrorScope('validation');
  gpu.device.pushErrorScope('out-of-memory');
  const resolved = await planned;
  const list = Array.isArray(resolved) ? resolved : [resolved];
  submit(gpu, list, 'test');
  const oom = await gpu.device.popErrorScope();
  const validation = await gpu.device.popErrorScope();
  if (oom) throw new Error(`GPU out of memory: ${oom.message}`);
  if (validation) throw new Error(`WebGPU validation error: ${validation.message}`);
  for (const d of list) d.destroy();
}

export const read = (gpu: Gpu, t: Tensor): Promise<Float32Array> => readTensor(gpu, t);
