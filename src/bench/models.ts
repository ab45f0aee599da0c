// Model benchmark: DeiT-tiny forward time per image at batch 1 and 8, the cold first
// classification (parse, upload, pipeline creation, first run), and GPU memory. DOM-free.
import { createGpu, type Gpu } from '../gpu/device';
import { readTensor } from '../gpu/tensor';
import { benchmark } from '../gpu/timer';
import { planForward } from '../graph/forward';
import { ViT } from '../models/vit';
import { loadCheckpoint } from '../weights/load';

// Relative to the site's base, so the suite runs in a page, in the worker and under any base path.
const MODEL = `${import.meta.env.BASE_URL}models/deit-tiny/`;

export async function runModelBench(_shared: Gpu, log: (line: string) => void): Promise<void> {
  const [weights, config] = await Promise.all([
    fetch(`${MODEL}model.safetensors`).then((r) => r.arrayBuffer()),
    fetch(`${MODEL}config.json`).then((r) => r.json()),
  ]);
  // A fresh device, so the cold figure includes compiling every pipeline.
  const gpu = await createGpu();
  log(`adapter: ${gpu.name}`);
  const input = new Float32Array(8 * 3 * 224 * 224).map((_, i) => Math.sin(i * 0.01));

  const t0 = performance.now();
  const checkpoint = loadCheckpoint(weights, config);
  const model = ViT.create(gpu, checkpoint.config, checkpoint.weights);
  const first = await planForward(model, { batch: 1 });
  first.run(input.subarray(0, 3 * 224 * 224));
  await readTensor(gpu, first.logits);
  log(`DeiT-tiny cold first classification (parse, upload, ${gpu.pipelines.size} pipelines, run, read): ${(performance.now() - t0).toFixed(0)} ms`);

  for (const batch of [1, 8]) {
    const plan = batch === 1 ? first : await planForward(model, { batch });
    plan.run(input.subarray(0, batch * 3 * 224 * 224));
    const t = await benchmark(gpu, plan.dispatches, 3000, 20);
    // End to end as a caller sees it: upload, run, read the logits back.
    const reps = 3;
    const e0 = performance.now();
    for (let r = 0; r < reps; r++) {
      plan.run(input.subarray(0, batch * 3 * 224 * 224));
      await readTensor(gpu, plan.logits);
    }
    const e2e = (performance.now() - e0) / reps;
    log(`DeiT-tiny batch ${batch}: ${(t.ms / batch).toFixed(1)} ms/image GPU (${t.method}), ${(e2e / batch).toFixed(1)} ms/image end to end, ` +
      `${((1000 * batch) / e2e).toFixed(2)} images/s; ${plan.dispatches.length} dispatches per forward`);
    log(`  GPU memory: parameters ${(model.bytes / 2 ** 20).toFixed(1)} MiB, activations ${(plan.bytes / 2 ** 20).toFixed(1)} MiB`);
    if (plan !== first) plan.destroy();
  }
  first.destroy();
  model.destroy();
  gpu.device.destroy();
}
