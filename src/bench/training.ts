// Training speed: one optimizer step (forward, loss, backward, AdamW) of the small Fashion-MNIST
// ViT at batch 64 and of DeiT-tiny at batch 8, and of DeiT-tiny's last block trained on the frozen
// blocks' cached output, with the GPU memory training holds. DOM-free.
import type { Gpu } from '../gpu/device';
import type { Trainable } from '../graph/backward';
import { PRESETS, tokenCount, type ViTConfig } from '../models/config';
import { initWeights } from '../models/init';
import { ViT } from '../models/vit';
import { Trainer } from '../training/trainer';

const CASES: { name: string; config: ViTConfig; batch: number; trainable?: Trainable; fromFirstTrainable?: boolean }[] = [
  { name: 'Fashion-MNIST ViT (28 px, patch 4, dim 64, depth 4)', config: PRESETS['fashion-mnist'], batch: 64 },
  { name: 'DeiT-tiny (224 px)', config: PRESETS['deit-tiny'], batch: 8 },
  { name: 'DeiT-tiny, last block and head from the frozen blocks\' output', config: PRESETS['deit-tiny'], batch: 8, trainable: { lastBlocks: 1 }, fromFirstTrainable: true },
];

export async function runTrainingBench(gpu: Gpu, log: (line: string) => void): Promise<void> {
  log(`adapter: ${gpu.name}`);
  for (const c of CASES) {
    const model = ViT.create(gpu, c.config, initWeights(c.config, 1));
    const trainer = await Trainer.create(model, c.name, { batch: c.batch, trainable: c.trainable, fromFirstTrainable: c.fromFirstTrainable, schedule: { baseLr: 1e-3, warmupSteps: 1, totalSteps: 100 } });
    const { inChannels, imageSize, dim } = c.config;
    // Images, or the [T, D] residual stream the first trained block reads.
    const per = c.fromFirstTrainable ? tokenCount(c.config) * dim : inChannels * imageSize ** 2;
    const input = new Float32Array(c.batch * per).map((_, i) => Math.sin(i * 0.013));
    const labels = Float32Array.from({ length: c.batch }, (_, i) => i % c.config.numClasses);
    await trainer.trainStep(input, labels); // compiles pipelines
    const reps = 3;
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) await trainer.trainStep(input, labels);
    const ms = (performance.now() - t0) / reps;
    // The plan holds activations and gradients; AdamW two moments per trained value.
    const mib = (trainer.plan.bytes + model.bytes + 2 * trainer.plan.gradsFlat.buffer.size) / 2 ** 20;
    log(`${c.name}, batch ${c.batch}: ${(ms / 1000).toFixed(2)} s per step, ${((1000 * c.batch) / ms).toFixed(1)} images/s; ` +
      `GPU memory ${mib.toFixed(1)} MiB (activations, gradients, AdamW moments, parameters)`);
    trainer.destroy();
    model.destroy();
  }
}
