// Model benchmark: DeiT-tiny forward time per image at batch 1 and 8, the cold first
// classification (parse, upload, pipeline creation, first run), and GPU memory; the small
// Fashion-MNIST ViT at batch 1 and 64. The swin suite times Swin-T the same way (random weights:
// timing does not depend on their values); run both in one call to compare them. DOM-free.
import { createGpu, type Gpu } from '../gpu/device';
import { readTensor } from '../gpu/tensor';
import { benchmark } from '../gpu/timer';
import { planForward, type ForwardPlan } from '../graph/forward';
import type { Model } from '../graph/model';
import { initWeights } from '../models/init';
import { createModel, PRESETS } from '../models/registry';
import { loadCheckpoint } from '../weights/load';

// Relative to the site's base, so the suite runs in a page, in the worker and under any base path.
const MODEL = `${import.meta.env.BASE_URL}models/deit-tiny/`;

export async function runModelBench(_shared: Gpu, log: (line: string) => void): Promise<void> {
  const [weights, config] = await Promise.all([
    fetch(`${MODEL}model.safetensors`).then((r) => r.arrayBuffer()),
    fetch(`${MODEL}config.json`).then((r) => r.json()),
  ]);
  // A fresh device, so the cold figure includes compiling every pipeline.
  await benchModels(weights, config, await createGpu(), log);
}

/**
 * The model suite on `gpu` (fresh: the cold figure includes compiling every pipeline), which it
 * destroys at the end; DeiT-tiny's checkpoint and config given, so Node can read them from disk.
 */
export async function benchModels(weights: ArrayBuffer | Uint8Array, config: unknown, gpu: Gpu, log: (line: string) => void): Promise<void> {
  log(`adapter: ${gpu.name}`);
  const input = new Float32Array(8 * 3 * 224 * 224).map((_, i) => Math.sin(i * 0.01));

  const t0 = performance.now();
  const checkpoint = loadCheckpoint(weights, config);
  const model = createModel(gpu, checkpoint.config, checkpoint.weights);
  const first = await planForward(model, { batch: 1 });
  first.run(input.subarray(0, 3 * 224 * 224));
  await readTensor(gpu, first.logits);
  log(`DeiT-tiny cold first classification (parse, upload, ${gpu.pipelines.size} pipelines, run, read): ${(performance.now() - t0).toFixed(0)} ms`);

  for (const batch of [1, 8]) await timeForward(model, 'DeiT-tiny', batch, input, batch === 1 ? first : undefined, log);
  first.destroy();
  model.destroy();

  // Timing does not depend on the weights' values: the small ViT runs with fresh ones.
  const small = createModel(gpu, PRESETS['fashion-mnist'], initWeights(PRESETS['fashion-mnist'], 1));
  const smallInput = new Float32Array(64 * 28 * 28).map((_, i) => Math.sin(i * 0.01));
  for (const batch of [1, 64]) await timeForward(small, 'Fashion-MNIST ViT', batch, smallInput, undefined, log);
  small.destroy();
  gpu.device.destroy();
}

/** Swin-T forward at batch 1 and 8, timed as DeiT-tiny is by runModelBench. */
export async function runSwinBench(gpu: Gpu, log: (line: string) => void): Promise<void> {
  log(`adapter: ${gpu.name}`);
  const input = new Float32Array(8 * 3 * 224 * 224).map((_, i) => Math.sin(i * 0.01));
  const swin = createModel(gpu, PRESETS['swin-tiny'], initWeights(PRESETS['swin-tiny'], 1));
  for (const batch of [1, 8]) await timeForward(swin, 'Swin-T', batch, input, undefined, log);
  swin.destroy();
}

export interface ForwardTiming { gpuMsPerImage: number; endToEndMsPerImage: number; method: string }

/**
 * GPU time per image, end-to-end time (upload, run, read the logits) and memory of one forward
 * plan; `input` holds at least `batch` images.
 */
export async function timeForward(model: Model, name: string, batch: number, input: Float32Array, ready: ForwardPlan | undefined, log: (line: string) => void): Promise<ForwardTiming> {
  const { gpu, config: c } = model;
  const per = c.inChannels * c.imageSize ** 2;
  const plan = ready ?? (await planForward(model, { batch }));
  const x = input.subarray(0, batch * per);
  plan.run(x);
  const t = await benchmark(gpu, plan.dispatches, 3000, 20);
  // Three end-to-end runs, or one when a forward takes seconds (a software adapter at batch 8):
  // there the noise is far below the figure, and two more runs only cost the time.
  const reps = t.ms > 1000 ? 1 : 3;
  const e0 = performance.now();
  for (let r = 0; r < reps; r++) {
    plan.run(x);
    await readTensor(gpu, plan.logits);
  }
  const e2e = (performance.now() - e0) / reps;
  log(`${name} batch ${batch}: ${(t.ms / batch).toFixed(1)} ms/image GPU (${t.method}), ${(e2e / batch).toFixed(1)} ms/image end to end, ` +
    `${((1000 * batch) / e2e).toFixed(2)} images/s; ${plan.dispatches.length} dispatches per forward`);
  log(`  GPU memory: parameters ${(model.bytes / 2 ** 20).toFixed(1)} MiB, activations ${(plan.bytes / 2 ** 20).toFixed(1)} MiB`);
  if (!ready) plan.destroy();
  return { gpuMsPerImage: t.ms / batch, endToEndMsPerImage: e2e / batch, method: t.method };
}
