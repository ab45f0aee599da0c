// Training speed: one optimizer step (forward, loss, backward, AdamW) of the small Fashion-MNIST
// ViT at batch 64, of DeiT-tiny and Swin-T at batch 8, of the small Swin at batch 64, and of
// DeiT-tiny's last block trained on the frozen blocks' cached output, with the GPU memory training
// holds. DOM-free.
import type { Gpu } from '../gpu/device';
import { numel } from '../gpu/tensor';
import { firstTrainableBlock, type Trainable } from '../graph/training';
import { initWeights } from '../models/init';
import { createModel, PRESETS, type AnyConfig } from '../models/registry';
import { Trainer } from '../training/trainer';

const CASES: TrainingCase[] = [
  { name: 'Fashion-MNIST ViT (28 px, patch 4, dim 64, depth 4)', config: PRESETS['fashion-mnist'], batch: 64 },
  { name: 'DeiT-tiny (224 px)', config: PRESETS['deit-tiny'], batch: 8 },
  { name: 'Swin-T (224 px)', config: PRESETS['swin-tiny'], batch: 8 },
  { name: 'Swin from scratch on Fashion-MNIST (28 px, patch 2, width 16, depths 2-2)', config: PRESETS['swin-fashion-mnist'], batch: 64 },
  { name: 'DeiT-tiny, last block and head from the frozen blocks\' output', config: PRESETS['deit-tiny'], batch: 8, trainable: { lastBlocks: 1 }, fromFirstTrainable: true },
];

export interface TrainingCase { name: string; config: AnyConfig; batch: number; trainable?: Trainable; fromFirstTrainable?: boolean }

export async function runTrainingBench(gpu: Gpu, log: (line: string) => void): Promise<void> {
  log(`adapter: ${gpu.name}`);
  for (const c of CASES) await timeTrainingStep(gpu, c, log);
}

/** One optimizer step's time (the mean of `reps` after one that compiles), from fresh weights. */
export async function timeTrainingStep(gpu: Gpu, c: TrainingCase, log: (line: string) => void, reps = 3): Promise<{ msPerStep: number; imagesPerSecond: number }> {
  const model = createModel(gpu, c.config, initWeights(c.config, 1));
  const trainer = await Trainer.create(model, c.name, { batch: c.batch, trainable: c.trainable, fromFirstTrainable: c.fromFirstTrainable, schedule: { baseLr: 1e-3, warmupSteps: 1, totalSteps: 100 } });
  const { inChannels, imageSize } = c.config;
  // Images, or what the first trained block reads.
  const first = firstTrainableBlock(model.family, model.config, c.trainable ?? 'all');
  const per = c.fromFirstTrainable ? numel(model.family.planner(model.config, 1, imageSize).blockInput(first)) : inChannels * imageSize ** 2;
  const input = new Float32Array(c.batch * per).map((_, i) => Math.sin(i * 0.013));
  const labels = Float32Array.from({ length: c.batch }, (_, i) => i % c.config.numClasses);
  await trainer.trainStep(input, labels); // compiles pipelines
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) await trainer.trainStep(input, labels);
  const ms = (performance.now() - t0) / reps;
  // The plan holds activations and gradients; AdamW two moments per trained value.
  const mib = (trainer.plan.bytes + model.bytes + 2 * trainer.plan.gradsFlat.buffer.size) / 2 ** 20;
  log(`${c.name}, batch ${c.batch}: ${(ms / 1000).toFixed(2)} s per step, ${((1000 * c.batch) / ms).toFixed(1)} images/s; ` +
    `GPU memory ${mib.toFixed(1)} MiB (activations, gradients, AdamW moments, parameters)`);
  trainer.destroy();
  model.destroy();
  return { msPerStep: ms, imagesPerSecond: (1000 * c.batch) / ms };
}
