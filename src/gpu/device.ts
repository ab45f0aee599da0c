// Device creation: ask for every limit the adapter offers (the defaults are far below what real
// adapters give, e.g. 128 MiB storage bindings) and the optional features the kernels can use, or
// only the WebGPU defaults, as many laptops and phones give, to test that everything fits them.
import type { GpuMemory } from './buffers';
import { PipelineCache } from './pipelines';

/** Limits the kernels check against. With `limits: 'adapter'` we request the adapter's maximum for each. */
const WANTED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
] as const;

const OPTIONAL_FEATURES: GPUFeatureName[] = ['timestamp-query', 'shader-f16', 'subgroups'];

export type MatmulVariant = 'registers' | 'tiled';

export interface Gpu {
  readonly device: GPUDevice;
  readonly adapterInfo: GPUAdapterInfo;
  /** A CPU implementation (SwiftShader, WARP, lavapipe): it favours different kernels. */
  readonly isSoftware: boolean;
  /** Which matmul kernel this adapter gets; see `chooseMatmulVariant`. */
  readonly matmulVariant: MatmulVariant;
  readonly pipelines: PipelineCache;
  /** One-line description for benchmark output and the UI. */
  readonly name: string;
  /** The buffer limits tensors are allocated to: the device's, or lower caps (CreateGpuOptions.bufferLimits). */
  readonly bufferLimits: BufferLimits;
  /**
   * Bytes one tensor may take, from bufferLimits: a tensor is bound whole and lives in one buffer.
   * Plans choose their batch to fit it (graph/fit.ts).
   */
  readonly maxBindingBytes: number;
  /** The buffers made through createBuffer (gpu/buffers.ts) that are still live. */
  readonly memory: GpuMemory;
}

export interface BufferLimits { maxBufferSize: number; maxStorageBufferBindingSize: number }

/** What the WebGPU specification guarantees every adapter: the limits a device gets when it asks for none. */
export const DEFAULT_LIMITS = {
  maxBufferSize: 268_435_456,
  maxStorageBufferBindingSize: 134_217_728,
  maxComputeWorkgroupStorageSize: 16_384,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupSizeY: 256,
  maxComputeWorkgroupsPerDimension: 65_535,
  maxStorageBuffersPerShaderStage: 8,
  minStorageBufferOffsetAlignment: 256,
} as const;

export interface CreateGpuOptions {
  /** `navigator.gpu` by default; pass Dawn's `create([])` object in Node. */
  gpu?: GPU;
  powerPreference?: GPUPowerPreference;
  /** Override the adapter-based choice of matmul kernel. */
  matmulVariant?: MatmulVariant;
  /** The adapter's maximum limits (default), or the WebGPU defaults (DEFAULT_LIMITS) that every adapter gives. */
  limits?: 'adapter' | 'default';
  /**
   * Caps below the device's buffer limits, applied where tensors are allocated and plans are sized:
   * tests use them to see plans split and models refused as a smaller adapter would (WebGPU gives
   * no device limits below its defaults, 256 MiB buffers and 128 MiB bindings).
   */
  bufferLimits?: Partial<BufferLimits>;
}

export async function createGpu(options: CreateGpuOptions = {}): Promise<Gpu> {
  const gpu = options.gpu ?? (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) throw new Error(noWebGpuMessage());
  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) throw new NoAdapterError();
  const requiredLimits: Record<string, number> = {};
  if (options.limits !== 'default') for (const name of WANTED_LIMITS) requiredLimits[name] = adapter.limits[name];
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({ label: 'vit-engine', requiredLimits, requiredFeatures });
  return wrapDevice(device, adapter.info, options.matmulVariant, options.bufferLimits);
}

/** WebGPU is there but offers no adapter (no usable GPU or driver). */
export class NoAdapterError extends Error {
  constructor(message = 'WebGPU is present but no adapter was found (requestAdapter returned null)') {
    super(message);
    this.name = 'NoAdapterError';
  }
}

/** What to do where there is no navigator.gpu: Node has its own entry; a browser needs WebGPU. */
function noWebGpuMessage(): string {
  const inNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';
  return inNode
    ? 'WebGPU is not available in Node through this entry (navigator.gpu is undefined): import the engine from "vitgpu/node", which runs it on Dawn'
    : 'WebGPU is not available in this browser (navigator.gpu is undefined): use a recent Chrome, Edge or Safari, or a browser with WebGPU enabled, over HTTPS or localhost';
}

/** Wraps a device created elsewhere (e.g. by a host app that shares its device with us). */
export function wrapDevice(device: GPUDevice, adapterInfo: GPUAdapterInfo, matmulVariant?: MatmulVariant, caps: Partial<BufferLimits> = {}): Gpu {
  for (const [name, cap] of Object.entries(caps)) {
    // An explicit undefined is no cap, as an absent one ({ maxBufferSize: flags.cap } with no flag).
    if (cap !== undefined && !(cap > 0)) throw new Error(`bufferLimits.${name} must be a positive number of bytes, got ${cap}`);
  }
  const bufferLimits: BufferLimits = {
    maxBufferSize: Math.min(device.limits.maxBufferSize, caps.maxBufferSize ?? Infinity),
    maxStorageBufferBindingSize: Math.min(device.limits.maxStorageBufferBindingSize, caps.maxStorageBufferBindingSize ?? Infinity),
  };
  const isSoftware = isSoftwareAdapter(adapterInfo);
  const name = [adapterInfo.vendor, adapterInfo.architecture, adapterInfo.description].filter(Boolean).join(' ') || 'unknown adapter';
  return {
    device,
    adapterInfo,
    isSoftware,
    matmulVariant: matmulVariant ?? chooseMatmulVariant(isSoftware),
    pipelines: pipelineCache(device),
    name: isSoftware ? `${name} (software)` : name,
    bufferLimits,
    maxBindingBytes: Math.min(bufferLimits.maxBufferSize, bufferLimits.maxStorageBufferBindingSize),
    memory: { bytes: 0, buffers: 0 },
  };
}

const caches = new WeakMap<GPUDevice, PipelineCache>();

/** One cache per device: every wrapper of a device (an engine each, say) reuses what it compiled. */
function pipelineCache(device: GPUDevice): PipelineCache {
  let cache = caches.get(device);
  if (!cache) caches.set(device, (cache = new PipelineCache(device)));
  return cache;
}

function isSoftwareAdapter(info: GPUAdapterInfo): boolean {
  const fallback = (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  return fallback || /swiftshader|lavapipe|llvmpipe|warp|software/i.test(`${info.vendor} ${info.architecture} ${info.description}`);
}

/**
 * Software adapters run each invocation on a CPU SIMD lane: workgroup memory is ordinary memory
 * plus barriers that serialise the lanes, so the shared-memory tile kernel loses there (0.2 vs
 * 2 GFLOP/s measured on SwiftShader). Real GPUs need the tile reuse from workgroup memory.
 */
export function chooseMatmulVariant(isSoftware: boolean): MatmulVariant {
  return isSoftware ? 'registers' : 'tiled';
}
