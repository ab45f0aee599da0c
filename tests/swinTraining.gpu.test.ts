// Fine-tuning a Swin with the recipe that exists: head only on cached features, the last k blocks
// on the frozen blocks' cached output (k counts blocks across stages; a stage's patch merging
// trains with its first block), or everything; each cached path gives the whole forward pass's
// per-step losses. A small Swin: 16 px, patch 2 (an 8x8 map in 2x2 windows of 4, the second
// block shifted), then a 4x4 stage whose window covers it.
import { describe, expect, test } from 'vitest';
import type { Dataset } from '../src/engine/dataset';
import { train, type TrainSettings } from '../src/engine/train';
import { firstTrainableBlock, trainableNames } from '../src/graph/training';
import { createModel } from '../src/models/registry';
import type { SwinConfig } from '../src/models/swin/config';
import { swin } from '../src/models/swin/family';
import { relL2 } from './helpers/compare';
import { testGpu } from './helpers/gpu';
import { randn } from './helpers/random';
import { randomWeights } from './helpers/weights';
import { SAME_COMPUTATION_REL } from './tolerances';

const gpu = await testGpu();

const SMALL: SwinConfig = {
  family: 'swin', imageSize: 16, patchSize: 2, inChannels: 3, embedDim: 8, depths: [2, 2], heads: [2, 4], window: 4, mlpRatio: 2, qkvBias: true, eps: 1e-5,
  numClasses: 5, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], cropPct: 1,
};

function dataset(n: number, seed: number): Dataset {
  return { inputs: randn(n * 3 * 16 * 16, seed), labels: Int32Array.from({ length: n }, (_, i) => (i * 7 + seed) % SMALL.numClasses), count: n };
}

/** Per-step losses, held-out accuracies, feature progress and the trained weights of a run through the engine's loop. */
async function run(settings: Partial<TrainSettings>, data: { train: Dataset; holdout: Dataset }) {
  const model = createModel(gpu, SMALL, randomWeights(SMALL, 11));
  const losses: number[] = [];
  const evals: number[] = [];
  const features: string[] = [];
  const s: TrainSettings = { epochs: 2, batch: 4, trainable: 'head', lr: 1e-2, warmupEpochs: 0.5, weightDecay: 0.05, smoothing: 0.1, seed: 5, augment: 'none', ...settings };
  await train(model, 'swin test', data, s, {
    onProgress: (p) => {
      if (p.features) features.push(`${p.features.done}/${p.features.total}`);
      else if (p.evalAccuracy === undefined) losses.push(p.loss);
      else evals.push(p.evalAccuracy);
    },
  });
  const weights = await model.download();
  model.destroy();
  return { losses, evals, features, weights };
}

describe('Swin fine-tuning', () => {
  test('"last k blocks" counts blocks across stages; a stage\'s patch merging trains with its first block', () => {
    const names = (k: number) => trainableNames(swin, SMALL, { lastBlocks: k });
    expect(names(1).filter((n) => n.startsWith('layers.'))).toEqual(expect.arrayContaining(['layers.1.blocks.1.attn.relative_position_bias_table']));
    expect(names(1).some((n) => n.startsWith('layers.1.downsample'))).toBe(false);
    expect(names(2)).toEqual(expect.arrayContaining(['layers.1.downsample.norm.weight', 'layers.1.downsample.reduction.weight', 'layers.1.blocks.0.attn.qkv.weight', 'norm.weight', 'head.fc.weight']));
    expect(names(2).some((n) => n.startsWith('layers.0.'))).toBe(false);
    expect(trainableNames(swin, SMALL, 'head')).toEqual(['head.fc.weight', 'head.fc.bias']);
    expect(firstTrainableBlock(swin, SMALL, { lastBlocks: 2 })).toBe(2);
    expect(swin.isNoDecay('layers.0.blocks.1.attn.relative_position_bias_table')).toBe(true);
    expect(swin.isNoDecay('layers.1.downsample.reduction.weight')).toBe(false);
  });

  for (const [what, trainable] of [['head only', 'head'], ['the last block', { lastBlocks: 1 }], ['the last two blocks (across the patch merging)', { lastBlocks: 2 }]] as const) {
    test(`${what}: the cached path gives the whole forward pass's per-step losses`, async () => {
      const data = { train: dataset(14, 3), holdout: dataset(9, 4) };
      const cached = await run({ trainable }, data);
      const whole = await run({ trainable, featureCache: false }, data);
      console.log(`Swin ${what}: losses ${cached.losses.map((l) => l.toFixed(5)).join(' ')}; cached vs whole, worst relative difference ${Math.max(...cached.losses.map((l, i) => Math.abs(l - whole.losses[i]!) / l)).toExponential(2)}`);
      expect(cached.losses).toHaveLength(2 * 3);
      expect(whole.losses).toHaveLength(cached.losses.length);
      cached.losses.forEach((l, i) => expect(Math.abs(l - whole.losses[i]!), `step ${i}`).toBeLessThanOrEqual(SAME_COMPUTATION_REL * l));
      expect(cached.evals).toEqual(whole.evals);
      expect(cached.features).toEqual(['4/23', '8/23', '12/23', '14/23', '18/23', '22/23', '23/23']);
      expect(whole.features).toEqual([]);
      const start = randomWeights(SMALL, 11);
      for (const name of trainableNames(swin, SMALL, trainable)) {
        expect(relL2(cached.weights.get(name)!.data, start.get(name)!.data), `${name} trained`).toBeGreaterThan(0);
        expect(relL2(cached.weights.get(name)!.data, whole.weights.get(name)!.data), name).toBeLessThanOrEqual(SAME_COMPUTATION_REL);
      }
      // Everything else is as it started.
      for (const [name, t] of cached.weights) if (!trainableNames(swin, SMALL, trainable).includes(name)) expect(t.data, name).toEqual(start.get(name)!.data);
    });
  }

  test('the whole model trains from scratch (loss falls on a batch it sees again and again)', async () => {
    const data = { train: dataset(8, 5), holdout: dataset(4, 6) };
    const r = await run({ trainable: 'all', epochs: 20, batch: 8, lr: 1e-2, warmupEpochs: 2, smoothing: 0 }, data);
    console.log(`Swin from scratch on one batch: losses ${r.losses.map((l) => l.toFixed(3)).join(' ')}`);
    expect(r.losses).toHaveLength(20);
    expect(r.losses.at(-1)!).toBeLessThan(0.5 * r.losses[0]!);
  });
});
