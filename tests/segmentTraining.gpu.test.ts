// Training the dense head on a frozen backbone's cached tokens, through the engine: it learns
// (held-out IoU far above a constant mask), a resumed run ends where an uninterrupted one does, K
// classes train, bad masks are refused naming the example before anything trains, and a failed
// run leaves the trained segmenter as it was. Training the backbone with it: every gradient
// against the float64 reference (the ViT's backward from the head's d(tokens)). Synthetic 28 px images (a bright rectangle on a dark
// background, noise on both) on a one-block Fashion-MNIST ViT, so this stays quick.
import { describe, expect, test } from 'vitest';
import { Engine } from '../src/engine/engine';
import { trainSegHead, type SegDataset, type SegmentSettings } from '../src/engine/segment';
import { readTensors } from '../src/gpu/tensor';
import type { Model } from '../src/graph/model';
import { initSegHead, SEG_HEAD, SegHead, segHeadWidths, type SegHeadConfig } from '../src/graph/segment';
import { planSegmentationTraining } from '../src/graph/segmentTraining';
import { initWeights } from '../src/models/init';
import { createModel, PRESETS } from '../src/models/registry';
import type { ViTConfig } from '../src/models/vit/config';
import { segmentationMetrics } from '../src/training/segmentation';
import { parseSafetensors } from '../src/weights/safetensors';
import { relL2 } from './helpers/compare';
import { testGpu } from './helpers/gpu';
import { randn, rng, uniform } from './helpers/random';
import { randomWeights } from './helpers/weights';
import { segHeadRef } from './reference/segmentation';
import { vitLossAndGradsRef } from './reference/vit';
import { GRAD_REL_L2 } from './tolerances';

const gpu = await testGpu();
const CONFIG = { ...PRESETS['fashion-mnist'], depth: 1, numClasses: 0 };
const S = 28;

/** n images with a bright rectangle each; masks: 1 inside (binary), or 1 inside and 2 in its top half (3 classes). */
function rectangles(n: number, seed: number, classes = 1): SegDataset {
  const next = rng(seed);
  const inputs = new Float32Array(n * S * S);
  const masks = new Float32Array(n * S * S);
  for (let i = 0; i < n; i++) {
    const [y0, x0] = [Math.floor(next() * 14), Math.floor(next() * 14)];
    const [h, w] = [6 + Math.floor(next() * 8), 6 + Math.floor(next() * 8)];
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        const inside = y >= y0 && y < y0 + h && x >= x0 && x < x0 + w;
        const top = inside && y < y0 + h / 2;
        inputs[i * S * S + y * S + x] = (inside ? (top && classes > 1 ? 2.5 : 1.5) : -0.8) + 0.3 * (next() - 0.5);
        masks[i * S * S + y * S + x] = classes > 1 ? (top ? 2 : inside ? 1 : 0) : inside ? 1 : 0;
      }
    }
  }
  return { inputs, masks, count: n };
}

const SETTINGS: SegmentSettings = { epochs: 4, batch: 16, lr: 1e-2, warmupEpochs: 0, weightDecay: 0, seed: 0 };

function backbone(): Model {
  return createModel(gpu, CONFIG, initWeights(CONFIG, 3));
}

describe('dense head training on cached tokens', () => {
  test('the linear probe learns binary masks: held-out IoU far above every pixel foreground', async () => {
    const model = backbone();
    const head = SegHead.create(gpu, { hidden: [], outputs: 1 }, 64, initSegHead({ hidden: [], outputs: 1 }, 64, 0));
    const data = { train: rectangles(64, 1), holdout: rectangles(16, 2) };
    const r = await trainSegHead(model, head, 'probe', data, SETTINGS);
    const constant = segmentationMetrics(new Float32Array(data.holdout.masks.length).fill(1), data.holdout.masks, 1).iou;
    expect(r.steps).toBe(16);
    expect(r.eval!.iou).toBeGreaterThan(constant + 0.3);
    model.destroy();
    head.destroy();
  });

  test('a run resumed from its epoch-1 checkpoint ends with the uninterrupted run\'s scores and weights', async () => {
    const config: SegHeadConfig = { hidden: [8], outputs: 1 };
    const data = { train: rectangles(32, 3), holdout: rectangles(16, 4) };
    const settings = { ...SETTINGS, epochs: 2, lr: 3e-3 };
    const run = async (resumeFrom?: Uint8Array) => {
      const model = backbone();
      const head = SegHead.create(gpu, config, 64, initSegHead(config, 64, 5));
      let first: Uint8Array | undefined;
      const r = await trainSegHead(model, head, 'resume', data, settings, { saveCheckpoint: async (bytes, epoch) => void (epoch === 1 && (first = bytes)) }, resumeFrom);
      const weights = await head.download();
      model.destroy();
      head.destroy();
      return { r, first, weights };
    };
    const whole = await run();
    const resumed = await run(whole.first);
    expect(resumed.r.steps).toBe(2);
    expect(resumed.r.eval!.iou).toBeCloseTo(whole.r.eval!.iou, 5);
    for (const [name, w] of whole.weights) {
      const other = resumed.weights.get(name)!.data;
      w.data.forEach((v, i) => expect(Math.abs(v - other[i]!), name).toBeLessThan(1e-6));
    }
  });

  test('three classes train with softmax over the pixel', async () => {
    const model = backbone();
    const config: SegHeadConfig = { hidden: [], outputs: 3 };
    const head = SegHead.create(gpu, config, 64, initSegHead(config, 64, 0));
    const data = { train: rectangles(48, 6, 3), holdout: rectangles(16, 7, 3) };
    const r = await trainSegHead(model, head, 'classes', data, SETTINGS);
    // Every pixel background: only class 0 scores, at its share of the pixels, in a mean over the three classes.
    const constant = segmentationMetrics(Float32Array.from({ length: data.holdout.masks.length * 3 }, (_, i) => (i % 3 === 0 ? 1 : 0)), data.holdout.masks, 3).iou;
    expect(r.eval!.iou).toBeGreaterThan(constant + 0.15);
    model.destroy();
    head.destroy();
  });

  test('masks out of range or of the wrong size are refused naming the example, before training', async () => {
    const model = backbone();
    const head = SegHead.create(gpu, { hidden: [], outputs: 1 }, 64, initSegHead({ hidden: [], outputs: 1 }, 64, 0));
    const bad = rectangles(4, 8);
    bad.masks[2 * S * S + 5] = 2;
    bad.names = ['a.png', 'b.png', 'c.png', 'd.png'];
    await expect(trainSegHead(model, head, 'bad', { train: bad, holdout: rectangles(2, 9) }, SETTINGS)).rejects.toThrow(/mask c\.png: pixel 5 has class 2, outside 0\.\.1/);
    const short = { ...rectangles(4, 8), masks: new Float32Array(3 * S * S) };
    await expect(trainSegHead(model, head, 'bad', { train: short, holdout: rectangles(2, 9) }, SETTINGS)).rejects.toThrow(/training pairs: 2352 mask values for 4 masks of 28x28/);
    model.destroy();
    head.destroy();
  });
});

describe('training the backbone with the dense head', () => {
  // A ViT with a class token and one register (both skipped by the head), pre-norm, final norm over the tokens.
  const SMALL: ViTConfig = {
    imageSize: 12, patchSize: 4, inChannels: 1, dim: 16, depth: 2, heads: 2, mlpDim: 32, qkvBias: true, eps: 1e-6, regTokens: 1,
    tokens: 'cls', globalPool: 'token', norm: 'pre', numClasses: 3, mean: [0.5], std: [0.5], cropPct: 1,
  };
  for (const trainable of ['all', { lastBlocks: 1 }] as const) {
    test(`${trainable === 'all' ? 'everything' : 'the last block'} and the head: every gradient against the float64 reference`, async () => {
      const B = 2;
      const S = SMALL.imageSize;
      const weights = randomWeights(SMALL, 21);
      const model = createModel(gpu, SMALL, weights);
      const config: SegHeadConfig = { hidden: [6], outputs: 1 };
      const headWeights = initSegHead(config, SMALL.dim, 22);
      const head = SegHead.create(gpu, config, SMALL.dim, headWeights);
      const plan = await planSegmentationTraining(model, head, { batch: B, trainable });
      const images = randn(B * S * S, 23);
      const targets = uniform(B * S * S, 24).map((v) => (v > 0.5 ? 1 : 0));
      plan.run(images, targets);
      const names = [...plan.grads.keys()];
      const got = await readTensors(gpu, names.map((n) => plan.grads.get(n)!));
      // The reference: the ViT's backward from d(normed), which the head's reference gives.
      const widths = segHeadWidths(config, SMALL.dim);
      const headParams = {
        weights: widths.slice(1).map((_, i) => headWeights.get(`${SEG_HEAD}.fc${i + 1}.weight`)!.data),
        biases: widths.slice(1).map((_, i) => headWeights.get(`${SEG_HEAD}.fc${i + 1}.bias`)!.data),
      };
      let headRef: ReturnType<typeof segHeadRef> | undefined;
      const ref = vitLossAndGradsRef(SMALL, new Map([...weights].map(([n, w]) => [n, w.data])), images, B, { labels: [0, 0], smoothing: 0 }, (normed) => {
        headRef = segHeadRef(normed, { B, prefix: 2, h: 3, w: 3, Ho: S, Wo: S }, widths, headParams, targets);
        return { loss: headRef.loss, dnormed: headRef.dtokens };
      });
      expect(names.some((n) => n.startsWith('head.'))).toBe(false);
      expect(names.includes('blocks.0.attn.qkv.weight')).toBe(trainable === 'all');
      names.forEach((n, i) => {
        const layer = /^seg_head\.fc(\d+)\.(weight|bias)$/.exec(n);
        const r = layer ? (layer[2] === 'weight' ? headRef!.dW : headRef!.db)[Number(layer[1]) - 1]! : ref.grads.get(n)!;
        expect(relL2(got[i]!, r), n).toBeLessThan(GRAD_REL_L2);
      });
      plan.destroy();
      model.destroy();
      head.destroy();
    });
  }

  test('the last block trained with the head through the engine loop: it learns, and the backbone changed', async () => {
    const model = backbone();
    const before = await model.download();
    const config: SegHeadConfig = { hidden: [], outputs: 1 };
    const head = SegHead.create(gpu, config, 64, initSegHead(config, 64, 0));
    const data = { train: rectangles(32, 12), holdout: rectangles(16, 13) };
    const r = await trainSegHead(model, head, 'last', data, { ...SETTINGS, epochs: 3, lr: 3e-3, trainable: { lastBlocks: 1 } });
    const constant = segmentationMetrics(new Float32Array(data.holdout.masks.length).fill(1), data.holdout.masks, 1).iou;
    expect(r.eval!.iou).toBeGreaterThan(constant + 0.3);
    const after = await model.download();
    expect(relL2(after.get('blocks.0.mlp.fc1.weight')!.data, before.get('blocks.0.mlp.fc1.weight')!.data)).toBeGreaterThan(1e-4);
    expect(Array.from(after.get('patch_embed.proj.weight')!.data)).toEqual(Array.from(before.get('patch_embed.proj.weight')!.data));
    model.destroy();
    head.destroy();
  });
});

describe('the engine\'s segmenter', () => {
  test('trains beside the loaded model, segments, exports seg_head.* with the backbone, and survives a failed run', async () => {
    const engine = await Engine.create();
    const head: SegHeadConfig = { hidden: [], outputs: 1 };
    const data = { train: rectangles(32, 10), holdout: rectangles(8, 11) };
    const r = await engine.trainSegmentation('fashion-mnist', head, async () => data, { ...SETTINGS, epochs: 2 });
    expect(r.segmenter?.head).toEqual(head);
    const [mask] = await engine.segmentTensor(data.holdout.inputs.slice(0, S * S), 1);
    expect(mask!.size).toBe(S);
    expect(mask!.mask.every((p) => p >= 0 && p <= 1)).toBe(true);
    const names = parseSafetensors(engine.exportSegmenter()).names();
    expect(names).toContain('seg_head.fc1.weight');
    expect(names).toContain('blocks.3.mlp.fc2.weight');
    const bad = { ...data, train: { ...data.train, masks: data.train.masks.map((v) => v * 3) } };
    await expect(engine.trainSegmentation('fashion-mnist', head, async () => bad, SETTINGS)).rejects.toThrow(/outside 0\.\.1/);
    expect(engine.segmenterInfo()).toEqual(r.segmenter);
    const [again] = await engine.segmentTensor(data.holdout.inputs.slice(0, S * S), 1);
    expect(Array.from(again!.mask)).toEqual(Array.from(mask!.mask));
    engine.destroy();
  });
});
