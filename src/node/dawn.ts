// WebGPU in Node through Dawn (the optional `webgpu` package). Loaded on first use, so the rest of
// the library works, and says what to install, where it is missing.
import { existsSync } from 'node:fs';
import { constants } from 'node:os';

/** Debian's chromium package ships a Vulkan loader and SwiftShader (a CPU Vulkan driver) here. */
const CHROMIUM_DIR = '/usr/lib/chromium';
const SWIFTSHADER_ICD = `${CHROMIUM_DIR}/vk_swiftshader_icd.json`;
/** glibc's RTLD_NODELETE (os.constants.dlopen does not list it). */
const RTLD_NODELETE = 0x1000;

/**
 * On Linux, makes SwiftShader one of the drivers Dawn can pick when Chromium's copy is on the
 * machine: VK_ADD_DRIVER_FILES adds it beside the system's drivers instead of replacing them
 * (VK_ICD_FILENAMES would), so a real GPU still wins. Variables the user set are left alone.
 * Where the system has no Vulkan loader (no libvulkan1), Chromium's is loaded first: Dawn opens
 * "libvulkan.so.1" by name, and the loader matches it to the library already in the process.
 */
function prepareVulkan(): void {
  if (process.platform !== 'linux' || !existsSync(SWIFTSHADER_ICD)) return;
  const env = process.env;
  if (!env.VK_ICD_FILENAMES && !env.VK_DRIVER_FILES && !env.VK_ADD_DRIVER_FILES) env.VK_ADD_DRIVER_FILES = SWIFTSHADER_ICD;
  if (!canOpen('libvulkan.so.1') && existsSync(`${CHROMIUM_DIR}/libvulkan.so.1`)) {
    canOpen(`${CHROMIUM_DIR}/libvulkan.so.1`, constants.dlopen.RTLD_NOW | constants.dlopen.RTLD_GLOBAL | RTLD_NODELETE);
  }
}

/**
 * Whether the dynamic loader finds `library`. process.dlopen is Node's only way to open a shared
 * library: it opens it, then fails because it is no Node addon ("did not self-register"); only a
 * library it cannot open at all says "cannot open shared object file".
 */
function canOpen(library: string, flags = constants.dlopen.RTLD_LAZY): boolean {
  try {
    process.dlopen({ exports: {} }, library, flags);
    return true;
  } catch (e) {
    return !/cannot open shared object file/.test(e instanceof Error ? e.message : String(e));
  }
}

let dawn: Promise<GPU> | undefined;

/**
 * Dawn's `GPU` object (what `navigator.gpu` is in a browser), created once per process. Also
 * defines the WebGPU globals the engine uses (GPUBufferUsage, GPUMapMode, ...) where missing.
 */
export function nodeGpu(): Promise<GPU> {
  dawn ??= loadDawn();
  return dawn;
}

async function loadDawn(): Promise<GPU> {
  prepareVulkan();
  let module: typeof import('webgpu');
  try {
    module = await import('webgpu');
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new Error('vitgpu/node runs on Dawn, which is missing: install the optional dependency: npm install webgpu');
    }
    throw new Error(`vitgpu/node: Dawn (the webgpu package) failed to load: ${e instanceof Error ? e.message : String(e)}`);
  }
  for (const [name, value] of Object.entries(module.globals as Record<string, unknown>)) {
    if (!(name in globalThis)) Object.defineProperty(globalThis, name, { value, writable: true, configurable: true });
  }
  return module.create([]);
}

/** Why Dawn found no adapter, and what to do about it. */
export function noAdapterMessage(): string {
  return process.platform === 'linux'
    ? 'Dawn found no GPU adapter: install your GPU\'s Vulkan driver and libvulkan1, or Debian\'s chromium package for SwiftShader (a CPU fallback), or point VK_ICD_FILENAMES at a Vulkan driver\'s JSON file'
    : 'Dawn found no GPU adapter: this machine\'s GPU driver does not offer Vulkan, Metal or Direct3D 12 to it';
}

/**
 * Dawn's Node bindings wait for GPU work (a readback, a timestamp query) by polling on the main
 * thread with setImmediate, which spins a CPU core for as long as the GPU works. On a software
 * adapter (SwiftShader), where the GPU is the CPU, that core is taken from the rasteriser: a
 * DeiT-tiny forward measured 8.6 s spinning against 2.2 s polling once a millisecond, on 2 cores
 * under load. This makes setImmediate a setTimeout(0), which runs at most a millisecond later.
 * It changes the whole process, so the library never calls it on its own: a script or a server
 * that owns its process may (the CLIs' --node mode and the Dawn tests do).
 */
export function pollGpuGently(): void {
  const { setTimeout: later, clearTimeout: cancel, clearImmediate } = globalThis;
  if ((globalThis.setImmediate as { gentle?: boolean }).gentle) return;
  const ours = new WeakSet<object>();
  const gentle = (fn: (...args: unknown[]) => void, ...args: unknown[]) => {
    const handle = later(fn, 0, ...args);
    ours.add(handle);
    return handle;
  };
  gentle.gentle = true;
  globalThis.setImmediate = gentle as unknown as typeof setImmediate;
  globalThis.clearImmediate = (handle) => (handle && ours.has(handle) ? cancel(handle as unknown as NodeJS.Timeout) : clearImmediate(handle));
}
