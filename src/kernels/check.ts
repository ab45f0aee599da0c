// Argument validation shared by the kernel wrappers: every error names the kernel and argument,
// and is thrown before anything is created or dispatched.
import type { Gpu } from '../gpu/device';
import { bindingLimitName, byteLength, numel, type Tensor } from '../gpu/tensor';
import { formatBytes } from '../limits';

export class KernelArgumentError extends Error {
  constructor(kernel: string, message: string) {
    super(`${kernel}: ${message}`);
    this.name = 'KernelArgumentError';
  }
}

export function fail(kernel: string, message: string): never {
  throw new KernelArgumentError(kernel, message);
}

export function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Checks that every dimension is a positive integer and the tensor fits one binding. */
export function checkTensor(gpu: Gpu, kernel: string, name: string, t: Tensor): void {
  if (t.shape.some((d) => !Number.isInteger(d) || d <= 0)) {
    fail(kernel, `${name} has shape ${shapeStr(t.shape)}: every dimension must be a positive integer`);
  }
  if (byteLength(t) > gpu.maxBindingBytes) {
    fail(kernel, `${name} ${shapeStr(t.shape)} is ${formatBytes(byteLength(t))}, over ${bindingLimitName(gpu)}`);
  }
  if (t.offset + byteLength(t) > t.buffer.size) fail(kernel, `${name} runs past the end of its buffer`);
}

export function checkShape(kernel: string, name: string, t: Tensor, expected: readonly number[]): void {
  if (t.shape.length !== expected.length || t.shape.some((d, i) => d !== expected[i])) {
    fail(kernel, `${name} has shape ${shapeStr(t.shape)}, expected ${shapeStr(expected)}`);
  }
}

export function checkNumel(kernel: string, name: string, t: Tensor, expected: number): void {
  if (numel(t.shape) !== expected) fail(kernel, `${name} has ${numel(t.shape)} elements ${shapeStr(t.shape)}, expected ${expected}`);
}

const overlaps = (a: Tensor, b: Tensor) => a.buffer === b.buffer && a.offset < b.offset + byteLength(b) && b.offset < a.offset + byteLength(a);

/**
 * Outputs must not share a buffer with any input: WebGPU forbids a buffer bound writable and
 * read-only in one dispatch, even at disjoint ranges. Outputs may share a buffer (an arena of
 * gradients) but must not overlap.
 */
export function checkDistinct(kernel: string, outputs: Record<string, Tensor>, inputs: Record<string, Tensor | undefined>): void {
  const outs = Object.entries(outputs);
  outs.forEach(([on, o], k) => {
    for (const [inName, i] of Object.entries(inputs)) {
      if (!i || i.buffer !== o.buffer) continue;
      fail(kernel, overlaps(o, i) ? `output ${on} overlaps ${inName}` : `output ${on} shares a buffer with input ${inName}; a buffer written by a dispatch cannot also be read through another binding`);
    }
    for (const [other, p] of outs.slice(k + 1)) if (overlaps(o, p)) fail(kernel, `outputs ${on} and ${other} overlap`);
  });
}

/** Same data, another shape (row-major reinterpretation). */
export function view(t: Tensor, shape: readonly number[]): Tensor {
  if (numel(shape) !== numel(t.shape)) {
    throw new Error(`view ${t.label}: cannot view ${shapeStr(t.shape)} as ${shapeStr(shape)}`);
  }
  return { ...t, shape: [...shape] };
}
