// Where a DeiT-tiny forward pass spends its time: each planned dispatch timed on its own (so the
// sum exceeds a fused run by the per-pass overhead), summed by kind across the 12 blocks.
import type { Gpu } from '../gpu/device';
import type { Dispatch } from '../gpu/dispatch';
import { timeDispatches } from '../gpu/timer';
import { planTraining } from '../graph/training';
import { planForward } from '../graph/forward';
import { initWeights } from '../models/init';
import { createModel } from '../models/registry';
import { PRESETS } from '../models/vit/config';
import { loadCheckpoint } from '../weights/load';

/** Times each dispatch on its own and prints the sums by kind (block numbers dropped). */
async function profileDispatches(gpu: Gpu, dispatches: readonly Dispatch[], title: string, log: (line: string) => void): Promise<void> {
  const byKind = new Map<string, { ms: number; count: number }>();
  let total = 0;
  for (const d of dispatches) {
    const { ms } = await timeDispatches(gpu, [d], 1);
    const kind = d.label.replace(/^block \d+ /, '').replace(/^blocks\.\d+\.?/, '').replace(/^ /, '');
    const entry = byKind.get(kind) ?? { ms: 0, count: 0 };
    entry.ms += ms;
    entry.count++;
    byKind.set(kind, entry);
    total += ms;
  }
  log(`adapter: ${gpu.name}; ${title}, ${dispatches.length} dispatches timed one by one: ${total.toFixed(0)} ms in all`);
  for (const [kind, e] of [...byKind].sort((a, b) => b[1].ms - a[1].ms).slice(0, 20)) {
    log(`  ${kind.padEnd(28)} ${e.ms.toFixed(1).padStart(8)} ms  (${e.count} dispatches, ${(e.ms / e.count).toFixed(2)} ms each)`);
  }
}

/** The training step of the small Fashion-MNIST ViT at batch 64, forward and backward. */
export async function runTrainingProfile(gpu: Gpu, log: (line: string) => void): Promise<void> {
  const config = PRESETS['fashion-mnist'];
  const model = createModel(gpu, config, initWeights(config, 1));
  const plan = await planTraining(model, { batch: 64, smoothing: 0.1 });
  plan.run(new Float32Array(64 * 28 * 28).fill(0.1), Float32Array.from({ length: 64 }, (_, i) => i % 10));
  await profileDispatches(gpu, plan.dispatches, 'Fashion-MNIST ViT training step, batch 64', log);
  plan.destroy();
  model.destroy();
}

export async function runProfile(gpu: Gpu, log: (line: string) => void): Promise<void> {
  const [weights, config] = await Promise.all([
    fetch('/models/deit-tiny/model.safetensors').then((r) => r.arrayBuffer()),
    fetch('/models/deit-tiny/config.json').then((r) => r.json()),
  ]);
  const ckpt = loadCheckpoint(weights, config);
  const model = createModel(gpu, ckpt.config, ckpt.weights);
  const plan = await planForward(model, { batch: 1 });
  plan.run(new Float32Array(3 * 224 * 224).fill(0.1));
  await profileDispatches(gpu, plan.dispatches, 'DeiT-tiny forward, batch 1', log);
  plan.destroy();
  model.destroy();
}
