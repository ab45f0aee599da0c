// Device creation: ask for every limit the adapter offers (the defaults are far below what real
// adapters give, e.g. 128 MiB storage bindings) and the optional features the kernels can use.
import { PipelineCache } from './pipelines';

/** Limits the kernels check against. We request the adapter's maximum for each. */
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
}

export interface BufferLimits { maxBufferSize: number; maxStorageBufferBindingSize: number }

export interface CreateGpuOptions {
  /** `navigator.gpu` by default; pass Dawn's `create([])` object in Node. */
  gpu?: GPU;
  powerPreference?: GPUPowerPreference;
  /** Override the adapter-based choice of matmul kernel. */
  matmulVariant?: MatmulVariant;
  /**
   * Caps below the device's buffer limits, applied where tensors are allocated: tests use them to
   * see a model refused as a smaller adapter refuses it (WebGPU gives no device limits below its
   * defaults, 256 MiB buffers and 128 MiB bindings, so a real small limit cannot be asked for).
   */
  bufferLimits?: Partial<BufferLimits>;
}

export async function createGpu(options: CreateGpuOptions = {}): Promise<Gpu> {
  const gpu = options.gpu ?? (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) throw new Error(noWebGpuMessage());
  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) throw new NoAdapterError();
  const requiredLimits: Record<string, number> = {};
  for (const name of WANTED_LIMITS) requiredLimits[name] = adapter.limits[name];
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
  const isSoftware = isSoftwareAdapter(adapterInfo);
  const name = [adapterInfo.vendor, adapterInfo.architecture, adapterInfo.description].filter(Boolean).join(' ') || 'unknown adapter';
  return {
    device,
    adapterInfo,
    isSoftware,
    matmulVariant: matmulVariant ?? chooseMatmulVariant(isSoftware),
    pipelines: new PipelineCache(device),
    name: isSoftware ? `${name} (software)` : name,
    bufferLimits: {
      maxBufferSize: Math.min(device.limits.maxBufferSize, caps.maxBufferSize ?? Infinity),
      maxStorageBufferBindingSize: Math.min(device.limits.maxStorageBufferBindingSize, caps.maxStorageBufferBindingSize ?? Infinity),
    },
  };
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
