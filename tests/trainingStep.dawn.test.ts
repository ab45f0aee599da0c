// The seeded training steps of tests/helpers/trainingStep.ts in Node on Dawn: the first loss
// against timm's float64 loss, every loss against the one the browser test also checks.
import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import { createNodeGpu } from '../src/node';
import { parseSafetensors } from '../src/weights/safetensors';
import { ROOT } from './helpers/files';
import { SAME_LOSS_REL, seededLosses, STEP_FILES, STEPS } from './helpers/trainingStep';

const read = (path: string) => readFileSync(`${ROOT}/${path}`);

test('the loss of each step: the first equals timm\'s float64 loss, all equal the browser\'s to f32 rounding', async () => {
  const gpu = await createNodeGpu();
  const golden = parseSafetensors(read(STEP_FILES.golden));
  const losses = await seededLosses(gpu, {
    weights: read(STEP_FILES.weights),
    config: JSON.parse(read(STEP_FILES.config).toString('utf8')),
    input: parseSafetensors(read(STEP_FILES.input)),
    golden,
  });
  gpu.device.destroy();
  const expected = JSON.parse(read(STEP_FILES.expected).toString('utf8')) as { losses: number[] };
  const timm = golden.get('loss')[0]!;
  console.log(`Dawn: losses ${losses.join(', ')}; timm float64 first loss ${timm}`);
  expect(losses).toHaveLength(STEPS);
  expect(Math.abs(losses[0]! - timm) / timm).toBeLessThan(1e-5);
  // The optimizer moved the model: a step that did nothing would repeat the first loss.
  expect(Math.abs(losses[1]! - losses[0]!)).toBeGreaterThan(1e-3);
  losses.forEach((l, i) => expect(Math.abs(l - expected.losses[i]!) / expected.losses[i]!, `step ${i}`).toBeLessThanOrEqual(SAME_LOSS_REL));
});
