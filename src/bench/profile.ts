// Where a DeiT-tiny forward pass spends its time: each planned dispatch timed on its own (so the
// sum exceeds a fused run by the per-pass overhead), summed by kind across the 12 blocks.
import type { Gpu } from '../gpu/device';
import { timeDispatches } from '../gpu/timer';
import { planForward } from '../graph/forward';
import { ViT } from '../models/vit';
import { loadCheckpoint } from '../weights/load';

export async function runProfile(gpu: Gpu, log: (line: string) => void): Promise<void> {
  const [weights, config] = await Promise.all([
    fetch('/models/deit-tiny/model.safetensors').then((r) => r.arrayBuffer()),
    fetch('/models/deit-tiny/config.json').then((r) => r.json()),
  ]);
  const ckpt = loadCheckpoint(weights, config);
  const model = ViT.create(gpu, ckpt.config, ckpt.weights);
  const plan = await planForward(model, { batch: 1 });
  plan.run(new Float32Array(3 * 224 * 224).fill(0.1));
  const byKind = new Map<string, { ms: number; count: number }>();
  let total = 0;
  for (const d of plan.dispatches) {
    const { ms } = await timeDispatches(gpu, [d], 1);
    const kind = d.label.replace(/^block \d+ /, '');
    const entry = byKind.get(kind) ?? { ms: 0, count: 0 };
    entry.ms += ms;
    entry.count++;
    byKind.set(kind, entry);
    total += ms;
  }
  log(`adapter: ${gpu.name}; DeiT-tiny batch 1, ${plan.dispatches.length} dispatches timed one by one: ${total.toFixed(0)} ms in all`);
  for (const [kind, e] of [...byKind].sort((a, b) => b[1].ms - a[1].ms)) {
    log(`  ${kind.padEnd(24)} ${e.ms.toFixed(1).padStart(8)} ms  (${e.count} dispatches, ${(e.ms / e.count).toFixed(2)} ms each)`);
  }
  plan.destroy();
  model.destroy();
}
