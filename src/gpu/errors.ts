// GPU errors as named errors. WebGPU reports a failed allocation, an invalid bind group or a bad
// submit asynchronously, to whichever error scope is open (or as an uncaptured error nobody
// sees). The engine opens out-of-memory and validation scopes around everything it builds and
// runs, and turns what they catch into an error that says what was being built or run, and how
// big it was. Scopes are a per-device stack: the engine runs one call at a time, so they nest.

export type GpuErrorKind = 'out-of-memory' | 'validation';

export class GpuError extends Error {
  constructor(readonly kind: GpuErrorKind, message: string) {
    super(message);
    this.name = 'GpuError';
  }
}

/**
 * Opens an out-of-memory and a validation scope. The function it returns closes both (once; later
 * calls return null) and gives the first error they caught, named by `what`, or null.
 */
export function openErrorScopes(device: GPUDevice): (what: () => string) => Promise<GpuError | null> {
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let closed = false;
  return async (what) => {
    if (closed) return null;
    closed = true;
    // Popped in reverse order of pushing, both before either resolves.
    const validation = device.popErrorScope();
    const memory = device.popErrorScope();
    const [v, m] = await Promise.all([validation, memory]);
    if (m) return new GpuError('out-of-memory', `${what()}: out of GPU memory (${m.message})`);
    if (v) return new GpuError('validation', `${what()}: GPU validation error: ${v.message}`);
    return null;
  };
}

/**
 * Runs `work` inside the scopes. A GPU error they catch is thrown in place of the result, and in
 * place of an exception `work` threw, since it is the likelier cause (a readback of a buffer that
 * failed to allocate, say).
 */
export async function withErrorScopes<T>(device: GPUDevice, what: () => string, work: () => Promise<T>): Promise<T> {
  const close = openErrorScopes(device);
  let result: T;
  try {
    result = await work();
  } catch (e) {
    throw (await close(what)) ?? e;
  }
  const error = await close(what);
  if (error) throw error;
  return result;
}
