// Device loss, simulated by destroying the device behind the engine's back (reason `destroyed`):
// an engine on the app's own device tells the app and waits for a replacement; an engine on a
// device of its own re-creates it. Either way the model comes back from its checkpoint and gives
// the same logits as before. A loss between a classification's forward pass and its readback is
// retried once on a new device, or fails naming the loss. A training lost before its first epoch
// ends starts again from the start by itself; a training does not need the loaded model again, so
// one lost mid-run finishes though the file that model was streamed from can no longer be read; a
// run stopped right after a recovery keeps its finished epoch's evaluation. Masks are retried on a new
// device as classifications are, and replaceDevice moves the segmenter too. (Through the worker,
// mid-epoch losses and their checkpoints: workerDeviceLoss.gpu.test.ts.)
import { describe, expect, test } from 'vitest';
import { Engine, type DeviceLostEvent } from '../src/engine/engine';
import type { SegmentProgress } from '../src/engine/segment';
import type { TrainProgress, TrainSettings } from '../src/engine/train';
import { PRESETS } from '../src/models/vit/config';
import { initWeights } from '../src/models/init';
import { exportWeights } from '../src/training/checkpoint';
import { messageOf } from './helpers/errors';

const config = { ...PRESETS['fashion-mnist']!, numClasses: 10 };
const checkpoint = exportWeights(initWeights(config, 3), config);
const image = new Float32Array(2 * 784).map((_, i) => Math.sin(i / 5));

async function appDevice(): Promise<GPUDevice> {
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) throw new Error('no adapter');
  return adapter.requestDevice({ requiredLimits: { maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize } });
}

const logitsOf = async (engine: Engine) => (await engine.classifyTensor(image, 2, 28, { logits: true })).map((r) => Array.from(r.logits!));

/** The checkpoint as a file read by ranges, until it is deleted (`readable` false). */
const unreliableFile = (readable: () => boolean) => ({
  size: checkpoint.byteLength,
  read: async (begin: number, end: number) => {
    if (!readable()) throw new Error('the file was deleted');
    return checkpoint.subarray(begin, end);
  },
});

// Fine-tuning the head in 2 epochs of 2 steps of 8 images: the smallest run with a finished epoch before a loss mid-epoch.
const pixels = (n: number, seed: number) => new Float32Array(n * 784).map((_, i) => Math.sin(i * seed));
const labels = (n: number) => Int32Array.from({ length: n }, (_, i) => i % 10);
const trainData = async () => ({ train: { inputs: pixels(16, 0.37), labels: labels(16), count: 16 }, holdout: { inputs: pixels(8, 0.53), labels: labels(8), count: 8 } });
const trainSettings: TrainSettings = { epochs: 2, batch: 8, trainable: 'head', lr: 1e-2, warmupEpochs: 0, weightDecay: 0, smoothing: 0, seed: 0 };
const classes = Array.from({ length: 10 }, (_, i) => `class ${i}`);
// A segmentation head in 2 epochs of 2 steps of 8 images (what is learnt does not matter here, only that it is the same).
const segData = async () => ({ train: { inputs: pixels(16, 0.37), masks: pixels(16, 0.11).map((v) => (v > 0 ? 1 : 0)), count: 16 }, holdout: { inputs: pixels(8, 0.53), masks: pixels(8, 0.29).map((v) => (v > 0 ? 1 : 0)), count: 8 } });
const segSettings = { epochs: 2, batch: 8, lr: 1e-2, warmupEpochs: 0, weightDecay: 0, seed: 0 };
const segHead = { hidden: [16], outputs: 1 };

/** Whether `device` is still alive a moment from now (its lost promise has not settled). */
async function stillAlive(device: GPUDevice): Promise<boolean> {
  return Promise.race([device.lost.then(() => false), new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 200))]);
}

describe('device loss', () => {
  test('an app-owned device: the app is told, calls fail until replaceDevice, then the model is back', async () => {
    const first = await appDevice();
    const engine = Engine.fromDevice(first);
    await engine.loadModel('small', checkpoint, null);
    const before = await logitsOf(engine);
    const lost = new Promise<DeviceLostEvent>((resolve) => (engine.onDeviceLost = resolve));
    first.destroy();
    expect(await lost).toMatchObject({ reason: expect.stringMatching(/destroyed/i), recovery: 'replace' });
    await expect(logitsOf(engine)).rejects.toThrow(/^the GPU device was lost \(.+\): hand the engine a new one with replaceDevice\(device\)$/);

    const second = await appDevice();
    await engine.replaceDevice(second);
    expect(await logitsOf(engine)).toEqual(before);
    expect(engine.info().name).toBe('small');
    // The app's device stays the app's: destroying the engine leaves it alive.
    engine.destroy();
    expect(await stillAlive(second)).toBe(true);
    second.destroy();
  });

  test('an engine-owned device is re-created on the next call', async () => {
    const engine = await Engine.create();
    await engine.loadModel('small', checkpoint, null);
    const before = await logitsOf(engine);
    const lost = new Promise<DeviceLostEvent>((resolve) => (engine.onDeviceLost = resolve));
    // What a driver reset does, done from outside: the engine did not destroy it, so it is lost.
    engine.loseDeviceForTest('now');
    expect((await lost).recovery).toBe('recreate');
    expect(await logitsOf(engine)).toEqual(before);
    engine.destroy();
  });

  test('lost between the forward pass and its readback: retried once on a new device, same logits', async () => {
    const engine = await Engine.create();
    await engine.loadModel('small', checkpoint, null);
    const before = await logitsOf(engine);
    const events: DeviceLostEvent[] = [];
    engine.onDeviceLost = (e) => events.push(e);
    engine.loseDeviceForTest('next-submit');
    expect(await logitsOf(engine)).toEqual(before);
    expect(events).toHaveLength(1);
    expect(events[0]!.message).toMatch(/^the GPU device was lost \(.+\): the engine re-creates it at its next call and uploads the model again from its checkpoint, read again$/);
    engine.destroy();
  });

  test('an app-owned device lost mid-classification: the call fails naming the loss', async () => {
    const device = await appDevice();
    const engine = Engine.fromDevice(device);
    await engine.loadModel('small', checkpoint, null);
    engine.loseDeviceForTest('next-submit');
    await expect(logitsOf(engine)).rejects.toThrow(/^classify: the GPU device was lost \(.+\) during the call: hand the engine a new one with replaceDevice\(device\), then call again$/);
    engine.destroy();
  });

  test('a segmentation run lost in its first epoch starts again from the start and ends as an uninterrupted one', async () => {
    const engine = await Engine.create();
    const whole = await engine.trainSegmentation('fashion-mnist', segHead, segData, segSettings);
    const events: SegmentProgress[] = [];
    engine.loseDeviceForTest({ afterSteps: 1 }); // the second step is lost
    const resumed = await engine.trainSegmentation('fashion-mnist', segHead, segData, segSettings, { onProgress: (p) => events.push(p) });
    expect(events.filter((p) => p.recovered).map((p) => p.recovered!.message)).toEqual(['device lost: resumed from the start (no epoch had finished)']);
    expect(resumed.steps).toBe(4);
    for (const k of ['iou', 'dice', 'pixelAccuracy'] as const) expect(resumed.eval![k]).toBeCloseTo(whole.eval![k], 6);
    // Masks lost between their forward pass and its readback: retried on a new device, the segmenter uploaded again.
    const masks = await engine.segmentTensor(image, 2);
    engine.loseDeviceForTest('next-submit');
    expect(await engine.segmentTensor(image, 2)).toEqual(masks);
    engine.destroy();
  });

  test('replaceDevice on a live device: the segmenter moves to the new one; a model whose file can no longer be read is named as such', async () => {
    const first = await appDevice();
    const engine = Engine.fromDevice(first);
    let readable = true;
    await engine.loadModel('small', unreliableFile(() => readable), null);
    await engine.trainSegmentation('fashion-mnist', segHead, segData, { ...segSettings, epochs: 1 });
    const masks = await engine.segmentTensor(image, 2);
    readable = false;
    const second = await appDevice();
    expect(await messageOf(engine.replaceDevice(second))).toBe('the model was moved to another GPU device and could not be uploaded again: the file was deleted');
    expect(() => engine.info()).toThrow('no model loaded: call loadModel first');
    // The first device is its owner's again: the engine no longer uses it.
    first.destroy();
    expect(await engine.segmentTensor(image, 2)).toEqual(masks);
    engine.destroy();
    second.destroy();
  });

  test('a training lost mid-run finishes though the file the loaded model was streamed from can no longer be read', async () => {
    const engine = await Engine.create();
    let readable = true;
    await engine.loadModel('small', unreliableFile(() => readable), null);
    readable = false;
    const events: TrainProgress[] = [];
    engine.loseDeviceForTest({ afterSteps: 3 }); // epoch 2's second step is lost
    const result = await engine.train('current', classes, trainData, trainSettings, { onProgress: (p) => events.push(p) });
    expect(events.filter((p) => p.recovered).map((p) => p.recovered!.message)).toEqual(['device lost: resumed from the checkpoint of epoch 1']);
    expect(result).toMatchObject({ stopped: false, steps: 4, evalAccuracy: events.filter((p) => p.evalAccuracy !== undefined).at(-1)!.evalAccuracy });
    expect(result.model.name).toBe('small fine-tuned');
    // The trained model answers; the unreadable file is not needed any more.
    expect((await logitsOf(engine)).flat().every(Number.isFinite)).toBe(true);
    engine.destroy();
  });

  test('a training stopped right after a recovery ends with its finished epoch\'s evaluation; a countdown a run outlived is dropped', async () => {
    const engine = await Engine.create();
    await engine.loadModel('small', checkpoint, null);
    const events: TrainProgress[] = [];
    engine.loseDeviceForTest({ afterSteps: 3 }); // epoch 2's second step is lost
    const stopped = await engine.train('current', classes, trainData, trainSettings, { onProgress: (p) => events.push(p), shouldStop: () => events.some((p) => p.recovered) });
    const evaluated = events.filter((p) => p.evalAccuracy !== undefined);
    expect(evaluated.map((p) => p.epoch)).toEqual([0]);
    expect(stopped).toMatchObject({ stopped: true, steps: 2, evalAccuracy: evaluated[0]!.evalAccuracy });
    expect(stopped.evalAccuracy).not.toBeNaN();

    // A run that stops before its countdown runs out leaves no loss behind for the next run.
    engine.loseDeviceForTest({ afterSteps: 1 });
    expect((await engine.train('current', classes, trainData, trainSettings, { shouldStop: () => true })).steps).toBe(0);
    const later: TrainProgress[] = [];
    const run = await engine.train('current', classes, trainData, { ...trainSettings, epochs: 1 }, { onProgress: (p) => later.push(p) });
    expect(later.filter((p) => p.recovered)).toEqual([]);
    expect(run.steps).toBe(2);
    engine.destroy();
  });
});
