// Model variants on the GPU against the float64 reference model, at small inputs: each preset or
// option the issue names, with seeded weights at initialisation scales.
import { describe, test } from 'vitest';
import { planForward } from '../src/graph/forward';
import { readTensor } from '../src/gpu/tensor';
import { PRESETS, type ViTConfig } from '../src/models/config';
import { ViT } from '../src/models/vit';
import { expectClose, relL2 } from './helpers/compare';
import { testGpu } from './helpers/gpu';
import { randn } from './helpers/random';
import { randomWeights } from './helpers/weights';
import { vitForwardRef } from './reference/vit';
import { TOL } from './tolerances';

const gpu = await testGpu();

/** Runs the GPU forward (with attention) and the reference on the same seeded input. */
async function check(name: string, c: ViTConfig, seed: number, imageSize = c.imageSize): Promise<void> {
  const B = 2;
  const weights = randomWeights(c, seed);
  const input = randn(B * c.inChannels * imageSize * imageSize, seed + 1000);
  const model = ViT.create(gpu, c, weights);
  const plan = await planForward(model, { batch: B, imageSize, attention: true });
  gpu.device.pushErrorScope('validation');
  plan.run(input);
  const error = await gpu.device.popErrorScope();
  if (error) throw new Error(`${name}: ${error.message}`);
  const ref = vitForwardRef(c, new Map([...weights].map(([n, w]) => [n, w.data])), input, B, imageSize);
  const logits = await readTensor(gpu, plan.logits);
  const features = await readTensor(gpu, plan.features);
  console.log(`${name}: logits relative L2 ${relL2(logits, ref.logits).toExponential(2)}, features ${relL2(features, ref.features).toExponential(2)}`);
  expectClose(`${name} logits`, logits, ref.logits, TOL.model);
  expectClose(`${name} features`, features, ref.features, TOL.model);
  for (let l = 0; l < c.depth; l++) expectClose(`${name} attention layer ${l}`, await readTensor(gpu, plan.blocks[l]!.probs!), ref.probs[l]!, TOL.modelAttention);
  plan.destroy();
  model.destroy();
}

const SMALL: ViTConfig = { ...PRESETS['vit-tiny'], imageSize: 32, patchSize: 8, dim: 64, depth: 2, heads: 4, mlpDim: 256, numClasses: 10 };

describe('model variants match the float64 reference model', () => {
  test('DeiT distilled (cls + dist tokens, two heads averaged)', () => check('deit-tiny-distilled', { ...PRESETS['deit-tiny-distilled'], imageSize: 32, numClasses: 20 }, 1));
  test('ViT-S/16, real width and depth, 32 px', () => check('vit-small', { ...PRESETS['vit-small'], imageSize: 32, numClasses: 20 }, 2));
  test('ViT-B/16, real width and depth, 32 px', () => check('vit-base', { ...PRESETS['vit-base'], imageSize: 32, numClasses: 20 }, 3));
  test('a 1-channel ViT (medical images)', () => check('1-channel', { ...SMALL, inChannels: 1, mean: [0.5], std: [0.25] }, 4));
  test('avg pooling with fc_norm', () => check('avg-pool', { ...SMALL, globalPool: 'avg' }, 5));
  test('post-norm blocks', () => check('post-norm', { ...SMALL, norm: 'post' }, 6));
  test('no qkv bias, no class token (avg pooling)', () => check('no-qkv-bias', { ...SMALL, qkvBias: false, tokens: 'none', globalPool: 'avg' }, 7));
  test('patch 14 and patch 32', async () => {
    await check('patch-14', { ...SMALL, imageSize: 28, patchSize: 14 }, 8);
    await check('patch-32', { ...SMALL, imageSize: 64, patchSize: 32 }, 9);
  });
  test('trained at 224 px, run at 160 px with bicubic position embeddings', () => check('160px', { ...SMALL, imageSize: 224, patchSize: 16 }, 10, 160));
});
