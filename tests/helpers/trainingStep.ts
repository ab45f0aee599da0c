// One seeded training run of a few steps, the same in the browser (tests/trainingStep.gpu.test.ts)
// and in Node on Dawn (tests/trainingStep.dawn.test.ts): timm's DINOv2-with-registers layout at
// micro size (tests/fixtures/vitreg) on its golden input and labels, AdamW at a fixed learning
// rate. The first loss is before any update, so it must equal timm's float64 loss; the next ones
// follow the gradients and the optimizer. Both environments compare every loss with the values in
// tests/fixtures/training_step.json (written by scripts/training-step-fixture.js), so they agree
// with each other to f32 rounding.
import type { Gpu } from '../../src/gpu/device';
import { createModel } from '../../src/models/registry';
import { Trainer } from '../../src/training/trainer';
import { loadCheckpoint } from '../../src/weights/load';
import type { SafetensorsFile } from '../../src/weights/safetensors';

export const STEPS = 2;

export interface StepFiles {
  weights: ArrayBuffer | Uint8Array;
  config: unknown;
  input: SafetensorsFile;
  golden: SafetensorsFile;
}

export const STEP_FILES = {
  weights: 'tests/fixtures/vitreg/vit_reg_micro.safetensors',
  config: 'tests/fixtures/vitreg/vit_reg_micro.json',
  input: 'tests/fixtures/vitreg/vit_reg_micro_input.safetensors',
  golden: 'tests/fixtures/vitreg/vit_reg_micro_golden.safetensors',
  expected: 'tests/fixtures/training_step.json',
};

/** The loss of each of STEPS steps (before each step's update). */
export async function seededLosses(gpu: Gpu, files: StepFiles): Promise<number[]> {
  const { config, weights } = loadCheckpoint(files.weights, files.config);
  const model = createModel(gpu, config, weights);
  const trainer = await Trainer.create(model, 'vit_reg_micro', {
    batch: 2, trainable: 'all', smoothing: 0,
    schedule: { baseLr: 1e-3, warmupSteps: 0, totalSteps: 1e9 },
  });
  try {
    const input = files.input.get('input');
    const labels = files.golden.get('labels');
    const losses: number[] = [];
    for (let i = 0; i < STEPS; i++) losses.push((await trainer.trainStep(input, labels)).loss);
    return losses;
  } finally {
    trainer.destroy();
    model.destroy();
  }
}

/**
 * f32 rounding: the same kernels on the same data may still round differently where a shader
 * compiler fuses or reorders arithmetic; a few units in the last place of each loss term.
 */
export const SAME_LOSS_REL = 1e-6;
