// Soak: the small Fashion-MNIST ViT classifies 2,000 images and trains three short epochs, stopped
// and resumed twice, in one worker; the engine's GPU memory count comes back to its start exactly
// and the worker's JS heap (after a garbage collection) to within 10%. See src/bench/soak.ts for
// what "the start" is; the benchmark's `soak` suite runs the same with DeiT-tiny.
import { expect, test } from 'vitest';
import { soakInWorker } from '../src/bench/soak';

test('2,000 classifications and a twice-resumed training run leave no GPU buffer and no heap growth behind', async () => {
  const report = await soakInWorker({
    preset: 'fashion-mnist',
    // Random tensors in calls of 50 (1,910), and after every 4th call 10 ImageData images through decoding and preprocessing (90).
    classify: { total: 2000, batch: 50, imageEvery: 4, imageBatch: 10 },
    // 4 steps of 8 per epoch, stopped after step 1 (or 2) of epochs 2 and 3.
    train: { images: 32, holdout: 8, batch: 8, epochs: 3, stopAtStep: 1 },
  }, (line) => console.log(line));

  expect(report.classified).toBe(2000);
  // Stopped in the second epoch, resumed there and stopped in the third, resumed there and finished.
  expect(report.runs.map((r) => r.stopped)).toEqual([true, true, false]);
  expect(report.runs.map((r) => r.epochs)).toEqual([[0, 1], [1, 2], [2]]);
  expect(report.runs.every((r) => r.steps > 0)).toBe(true);

  expect(report.start.bytes).toBeGreaterThan(0);
  expect(report.afterClassify).toEqual(report.start);
  // Each run, stopped or finished, leaves the model alone: the same buffers every time.
  expect(report.afterRuns[1]).toEqual(report.afterRuns[0]);
  expect(report.afterRuns[2]).toEqual(report.afterRuns[0]);
  expect(report.afterRuns[0]!.bytes).toBeLessThan(report.start.bytes); // the cached plans went with the old model
  expect(report.end).toEqual(report.start);

  expect(report.heap.start, 'the worker heap is measurable (gc exposed, cross-origin isolated page)').not.toBeNull();
  const drift = Math.abs(report.heap.end! - report.heap.start!) / report.heap.start!;
  expect(drift).toBeLessThanOrEqual(0.1);
}, 300_000);
