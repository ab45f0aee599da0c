// Times GPU work: with timestamp queries around a compute pass where the adapter has them
// (`timestamp-query`), otherwise wall-clock from submit to onSubmittedWorkDone.
import { createBuffer } from './buffers';
import type { Gpu } from './device';
import type { Dispatch } from './dispatch';

export interface Timing { ms: number; method: 'gpu-timestamps' | 'wall-clock' }

/** Runs `dispatches` `repeats` times in one pass and returns the time of one repetition. */
export async function timeDispatches(gpu: Gpu, dispatches: readonly Dispatch[], repeats: number): Promise<Timing> {
  const { device } = gpu;
  const timestamps = device.features.has('timestamp-query');
  const querySet = timestamps ? device.createQuerySet({ label: 'timer', type: 'timestamp', count: 2 }) : null;
  const resolve = timestamps ? createBuffer(gpu, { label: 'timer resolve', size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }) : null;
  const readback = timestamps ? createBuffer(gpu, { label: 'timer readback', size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }) : null;
  const encoder = device.createCommandEncoder({ label: 'timer' });
  const pass = encoder.beginComputePass({
    label: 'timed',
    ...(querySet && { timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } }),
  });
  for (let r = 0; r < repeats; r++) for (const d of dispatches) d.encode(pass);
  pass.end();
  if (querySet && resolve && readback) {
    encoder.resolveQuerySet(querySet, 0, 2, resolve, 0);
    encoder.copyBufferToBuffer(resolve, 0, readback, 0, 16);
  }
  const start = performance.now();
  device.queue.submit([encoder.finish()]);
  await device.queue.onSubmittedWorkDone();
  const wallMs = performance.now() - start;
  if (!readback) return { ms: wallMs / repeats, method: 'wall-clock' };
  await readback.mapAsync(GPUMapMode.READ);
  const [begin, end] = new BigUint64Array(readback.getMappedRange());
  const ns = Number(end! - begin!);
  readback.unmap();
  for (const b of [resolve!, readback]) b.destroy();
  querySet!.destroy();
  // Some implementations quantise or zero timestamps; fall back to the wall clock then.
  if (!(ns > 0)) return { ms: wallMs / repeats, method: 'wall-clock' };
  return { ms: ns / 1e6 / repeats, method: 'gpu-timestamps' };
}

/** Warms up once, then repeats until about `budgetMs` of work or `maxRepeats`; returns ms per run. */
export async function benchmark(gpu: Gpu, dispatches: readonly Dispatch[], budgetMs = 1000, maxRepeats = 50): Promise<Timing> {
  const first = await timeDispatches(gpu, dispatches, 1);
  const repeats = Math.max(1, Math.min(maxRepeats, Math.floor(budgetMs / Math.max(first.ms, 1e-3))));
  if (repeats === 1 && first.ms > budgetMs / 2) return timeDispatches(gpu, dispatches, 1);
  return timeDispatches(gpu, dispatches, repeats);
}
