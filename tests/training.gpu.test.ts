// Whole-model gradients on the GPU against the float64 reference backward (itself checked by
// finite differences in referenceModel.node.test.ts).
import { describe, expect, test } from 'vitest';
import { firstTrainableBlock, planTraining, type Trainable } from '../src/graph/training';
import { planForward } from '../src/graph/forward';
import type { BlockPlan } from '../src/graph/layers/block';
import { readTensor } from '../src/gpu/tensor';
import type { ViTConfig } from '../src/models/vit/config';
import { createModel } from '../src/models/registry';
import { relL2 } from './helpers/compare';
import { testGpu } from './helpers/gpu';
import { randn, rng } from './helpers/random';
import { randomWeights } from './helpers/weights';
import { vitLossAndGradsRef } from './reference/vit';
import { GRAD_REL_L2 } from './tolerances';

const gpu = await testGpu();

const SMALL: ViTConfig = {
  imageSize: 16, patchSize: 4, inChannels: 3, dim: 32, depth: 2, heads: 2, mlpDim: 64, qkvBias: true, eps: 1e-6,
  tokens: 'cls', globalPool: 'token', norm: 'pre', numClasses: 5, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], cropPct: 1,
};

/**
 * `fromFrozenOutput`: the step starts at the first trainable block, fed what the frozen blocks
 * before it output (computed by a separate inference plan of the model's prefix).
 */
async function checkGrads(c: ViTConfig, trainable: Trainable, seed: number, soft = false, fromFrozenOutput = false): Promise<void> {
  const B = 3;
  const weights = randomWeights(c, seed);
  const model = createModel(gpu, c, weights);
  const input = randn(B * c.inChannels * c.imageSize * c.imageSize, seed + 100);
  const next = rng(seed + 200);
  const labels = Float32Array.from({ length: B }, () => Math.floor(next() * c.numClasses));
  let targets = labels;
  if (soft) {
    targets = new Float32Array(B * c.numClasses);
    labels.forEach((l, b) => {
      targets[b * c.numClasses + l] = 0.7;
      targets[b * c.numClasses + ((l + 1) % c.numClasses)] = 0.3;
    });
  }
  const first = firstTrainableBlock(model.family, c, trainable);
  let planInput = input;
  if (fromFrozenOutput) {
    const prefix = await planForward(model, { batch: B, toBlock: first });
    prefix.run(input);
    planInput = await readTensor(gpu, prefix.output);
    prefix.destroy();
  }
  const plan = await planTraining(model, { batch: B, trainable, smoothing: soft ? 0 : 0.1, softTargets: soft, fromFirstTrainable: fromFrozenOutput });
  expect(plan.forward.fromBlock).toBe(fromFrozenOutput ? first : 0);
  expect(plan.forward.blocks).toHaveLength(c.depth - plan.forward.fromBlock);
  // Frozen blocks in the plan keep nothing: GELU fused into fc1, as in inference.
  plan.forward.blocks.forEach((a, i) => expect((a as BlockPlan).mlp.h === (a as BlockPlan).mlp.act, `block ${plan.forward.fromBlock + i}`).toBe(plan.forward.fromBlock + i < first));
  gpu.device.pushErrorScope('validation');
  plan.run(planInput, targets);
  const error = await gpu.device.popErrorScope();
  if (error) throw new Error(`training step: ${error.message}`);
  const params = new Map([...weights].map(([n, w]) => [n, w.data]));
  const ref = vitLossAndGradsRef(c, params, input, B, soft ? { soft: targets } : { labels, smoothing: 0.1 });

  let loss = 0;
  for (const l of plan.losses) loss += (await readTensor(gpu, l)).reduce((a, b) => a + b, 0) / B / plan.losses.length;
  expect(Math.abs(loss - ref.loss) / ref.loss).toBeLessThan(1e-5);
  // What should train, stated here rather than taken from the plan: an empty or short list must fail.
  const all = [...ref.grads.keys()];
  const expected = trainable === 'all' ? all : trainable === 'head' ? all.filter((n) => n.startsWith('head'))
    : all.filter((n) => n.startsWith('head') || /^(norm|fc_norm)\./.test(n) || Number(/^blocks\.(\d+)\./.exec(n)?.[1] ?? -1) >= c.depth - trainable.lastBlocks);
  expect([...plan.trainable].sort()).toEqual(expected.sort());
  let worst = { name: '', err: 0 };
  for (const name of plan.trainable) {
    const err = relL2(await readTensor(gpu, plan.grads.get(name)!), ref.grads.get(name)!);
    if (!(err <= worst.err)) worst = { name, err };
  }
  console.log(`${JSON.stringify(trainable)}${fromFrozenOutput ? ' from the frozen output' : ''} ${c.tokens}${c.regTokens ? `+${c.regTokens} registers` : ''} ${c.norm} ${c.globalPool}${c.layerScale !== undefined ? ' LayerScale' : ''}${c.noEmbedClass ? ' no_embed_class' : ''}: loss ${loss.toFixed(5)}, ${plan.trainable.length} tensors, worst relative L2 gradient error ${worst.err.toExponential(2)} (${worst.name})`);
  expect(worst.err, worst.name).toBeLessThan(GRAD_REL_L2);
  plan.destroy();
  model.destroy();
}

describe('gradients of the whole model against the float64 reference', () => {
  test('small ViT, 2 blocks, label smoothing', () => checkGrads(SMALL, 'all', 1));
  test('DeiT distilled (cls + dist tokens, two heads)', () => checkGrads({ ...SMALL, tokens: 'cls+dist' }, 'all', 2));
  test('soft targets, avg pooling with fc_norm, no qkv bias', () => checkGrads({ ...SMALL, globalPool: 'avg', qkvBias: false }, 'all', 3, true));
  test('post-norm blocks', () => checkGrads({ ...SMALL, norm: 'post' }, 'all', 4));
  test('LayerScale, 2 registers, no class token in the position embedding (DINOv2 with registers)', () => checkGrads({ ...SMALL, layerScale: 1e-5, regTokens: 2, noEmbedClass: true }, 'all', 15));
  test('LayerScale, registers inside the position embedding, avg pooling with fc_norm, soft targets', () => checkGrads({ ...SMALL, layerScale: 1, regTokens: 3, globalPool: 'avg' }, 'all', 16, true));
  test('the CIFAR showcase\'s head: no class token, avg pooling, no final norm; and fc_norm=False', async () => {
    await checkGrads({ ...SMALL, tokens: 'none', globalPool: 'avg', fcNorm: false, finalNorm: false }, 'all', 17);
    await checkGrads({ ...SMALL, globalPool: 'avg', fcNorm: false }, 'all', 18);
  });
  test('post-norm with LayerScale; the last block with LayerScale trained alone', async () => {
    await checkGrads({ ...SMALL, norm: 'post', layerScale: 1, regTokens: 1 }, 'all', 19);
    await checkGrads({ ...SMALL, depth: 3, layerScale: 1, noEmbedClass: true }, { lastBlocks: 1 }, 20, false, true);
  });
  test('a backbone without a classifier cannot be trained, and says so', async () => {
    const model = createModel(gpu, { ...SMALL, numClasses: 0, layerScale: 1 }, randomWeights({ ...SMALL, numClasses: 0, layerScale: 1 }, 21));
    try {
      await expect(planTraining(model, { batch: 2 })).rejects.toThrow(/no classifier \(numClasses 0, a backbone\)/);
      // Its features still come out of the forward pass.
      const plan = await planForward(model, { batch: 2 });
      expect(plan.classifier).toBeUndefined();
      expect(plan.features.shape).toEqual([2, SMALL.dim]);
      plan.destroy();
    } finally {
      model.destroy();
    }
  });
  test('freezing: head only, and the last block with the head', async () => {
    await checkGrads(SMALL, 'head', 5);
    await checkGrads(SMALL, { lastBlocks: 1 }, 6);
    // Two frozen blocks that keep nothing, then one that keeps its activations, pre- and post-norm.
    await checkGrads({ ...SMALL, depth: 3 }, { lastBlocks: 1 }, 12);
    await checkGrads({ ...SMALL, depth: 3, norm: 'post' }, { lastBlocks: 1 }, 13);
  });
  test('the step starting at the first trainable block, fed the frozen blocks\' output', async () => {
    const deeper = { ...SMALL, depth: 3 };
    await checkGrads(deeper, { lastBlocks: 1 }, 7, false, true);
    await checkGrads(deeper, { lastBlocks: 2 }, 8, false, true);
    await checkGrads({ ...deeper, norm: 'post' }, { lastBlocks: 1 }, 9, false, true);
    await checkGrads({ ...deeper, tokens: 'cls+dist' }, { lastBlocks: 1 }, 10, false, true);
    // No block trains (the final norm, fc_norm and the head do): the step starts after the last block.
    await checkGrads({ ...deeper, globalPool: 'avg' }, { lastBlocks: 0 }, 11, false, true);
    await checkGrads(deeper, { lastBlocks: 0 }, 14, false, true);
  });
});
