// The dense head on the built-in Fashion-MNIST mask example (garment where the grey value is above
// GARMENT_THRESHOLD): the seed's head (D -> 256 -> 128 -> 1, GELU, sigmoid) and the linear probe
// of the same frozen tokens (a per-patch linear classifier, upsampled: the baseline the head must
// beat), trained on the same pairs, with the held-out IoU and Dice after every epoch, beside the
// IoU of predicting every pixel as garment. The backbone is the fashion-mnist ViT preset (28 px,
// 1 channel, patch 4, width 64, depth 4) at its seeded initialisation, frozen (the `last1` case
// trains its last block and final norm with the seed head). DOM-free. `?train=N&holdout=N&epochs=N`
// on the page override the split and the epochs, `?cases=probe,seed,last1` the runs.
import { fetchFashionMnist } from '../data/idx';
import type { Gpu } from '../gpu/device';
import { initSegHead, SEED_HIDDEN, SegHead, type SegHeadConfig } from '../graph/segment';
import { initWeights } from '../models/init';
import { createModel, PRESETS } from '../models/registry';
import { fashionMnistSegmentation, tokenLayout, trainSegHead, type SegmentSettings } from '../engine/segment';
import { GARMENT_THRESHOLD, segmentationMetrics } from '../training/segmentation';

const SPLIT = { train: 2000, holdout: 500, epochs: 2 };

/** The runs, by the name `?cases=` picks them with (default: probe,seed). */
const HEADS: Record<string, { name: string; config: SegHeadConfig; settings: Partial<SegmentSettings> }> = {
  probe: { name: 'linear probe (per-patch Linear 64 -> 1, upsampled)', config: { hidden: [], outputs: 1 }, settings: { lr: 1e-2 } },
  seed: { name: 'seed head (64 -> 256 -> 128 -> 1, GELU)', config: { hidden: [...SEED_HIDDEN], outputs: 1 }, settings: { lr: 1e-3 } },
  last1: { name: 'seed head with the last block and the final norm', config: { hidden: [...SEED_HIDDEN], outputs: 1 }, settings: { lr: 1e-3, trainable: { lastBlocks: 1 } } },
};

export async function runSegmentBench(gpu: Gpu, log: (line: string) => void): Promise<void> {
  const query = typeof location === 'undefined' ? new URLSearchParams() : new URLSearchParams(location.search);
  const [trainCount, holdoutCount, epochs] = (['train', 'holdout', 'epochs'] as const).map((k) => Number(query.get(k) ?? SPLIT[k]));
  const cases = (query.get('cases') ?? 'probe,seed').split(',').map((k) => {
    const c = HEADS[k];
    if (!c) throw new Error(`segment: unknown case "${k}"; known: ${Object.keys(HEADS).join(', ')}`);
    return c;
  });
  log(`adapter: ${gpu.name}`);
  const fm = await fetchFashionMnist(new URL(`${import.meta.env.BASE_URL}data/fashion-mnist/`, self.location.origin));
  const config = { ...PRESETS['fashion-mnist'], numClasses: 0 };
  const train = fashionMnistSegmentation(fm.images, 0, trainCount!, config, GARMENT_THRESHOLD);
  const holdout = fashionMnistSegmentation(fm.images, trainCount!, holdoutCount!, config, GARMENT_THRESHOLD);
  const garment = holdout.masks.reduce((a, b) => a + b, 0) / holdout.masks.length;
  const allGarment = segmentationMetrics(new Float32Array(holdout.masks.length).fill(1), holdout.masks, 1);
  log(`Fashion-MNIST masks (grey > ${GARMENT_THRESHOLD}): ${trainCount} training pairs (images 0..${trainCount! - 1} of the bundled test split), ${holdoutCount} held out; ` +
    `${(100 * garment).toFixed(1)}% of held-out pixels are garment; every pixel as garment: IoU ${allGarment.iou.toFixed(3)}, Dice ${allGarment.dice.toFixed(3)}; every pixel as background: IoU 0`);
  const model = createModel(gpu, config, initWeights(config, 1));
  const { width } = tokenLayout(model);
  try {
    for (const h of cases) {
      const head = SegHead.create(gpu, h.config, width, initSegHead(h.config, width, 0));
      const settings: SegmentSettings = { epochs: epochs!, batch: 32, lr: 1e-3, warmupEpochs: 0.2, weightDecay: 0, seed: 0, ...h.settings };
      const t0 = performance.now();
      let stepStart = 0;
      let stepTime = 0;
      let steps = 0;
      await trainSegHead(model, head, h.name, { train, holdout }, settings, {
        onProgress: (p) => {
          if (p.features && p.features.done === p.features.total) log(`  ${h.name}: tokens of ${p.features.total} images in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
          if (p.step > 0 && !p.eval) {
            if (stepStart) stepTime += performance.now() - stepStart;
            steps++;
          }
          stepStart = performance.now();
          if (p.eval) {
            log(`  ${h.name}, epoch ${p.epoch + 1}: held-out IoU ${p.eval.iou.toFixed(4)}, Dice ${p.eval.dice.toFixed(4)}, pixel accuracy ${p.eval.pixelAccuracy.toFixed(4)}; ` +
              `${(stepTime / Math.max(1, steps - 1) / 1000).toFixed(2)} s per step of ${settings.batch} (${p.imagesPerSecond.toFixed(1)} images/s)`);
            stepStart = 0;
          }
        },
      });
      log(`  ${h.name}: ${((performance.now() - t0) / 1000).toFixed(0)} s in all`);
      head.destroy();
    }
  } finally {
    model.destroy();
  }
}
