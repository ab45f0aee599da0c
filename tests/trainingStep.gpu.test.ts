// The seeded training steps of tests/helpers/trainingStep.ts in the browser: the first loss
// against timm's float64 loss, every loss against the one the Dawn test also checks.
import { expect, test } from 'vitest';
import { fetchBytes, fetchSafetensors } from './helpers/fixtures';
import { testGpu } from './helpers/gpu';
import { SAME_LOSS_REL, seededLosses, STEP_FILES, STEPS } from './helpers/trainingStep';

const url = (path: string) => `/${path}`;

test('the loss of each step: the first equals timm\'s float64 loss, all equal Dawn\'s to f32 rounding', async () => {
  const gpu = await testGpu();
  const golden = await fetchSafetensors(url(STEP_FILES.golden));
  const losses = await seededLosses(gpu, {
    weights: await fetchBytes(url(STEP_FILES.weights)),
    config: await (await fetch(url(STEP_FILES.config))).json(),
    input: await fetchSafetensors(url(STEP_FILES.input)),
    golden,
  });
  const expected = await (await fetch(url(STEP_FILES.expected))).json() as { losses: number[] };
  const timm = golden.get('loss')[0]!;
  console.log(`browser: losses ${losses.join(', ')}; timm float64 first loss ${timm}`);
  expect(losses).toHaveLength(STEPS);
  expect(Math.abs(losses[0]! - timm) / timm).toBeLessThan(1e-5);
  expect(Math.abs(losses[1]! - losses[0]!)).toBeGreaterThan(1e-3);
  losses.forEach((l, i) => expect(Math.abs(l - expected.losses[i]!) / expected.losses[i]!, `step ${i}`).toBeLessThanOrEqual(SAME_LOSS_REL));
});
